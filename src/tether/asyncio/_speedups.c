/* Optional accelerator for tether.asyncio: the per-message paths of a connection.
 *
 * ConnectionCore is the base class of tether.asyncio.connection.Connection. Its fields
 * are the connection's hot state (Python code reads and writes them as attributes), and
 * its methods are the paths every message takes: get_buffer and buffer_updated (a read,
 * and the hand-over of its one message to the receiver waiting for it), __anext__ (the
 * next message for `async for`) and send. Whatever they do not handle themselves they
 * leave to the connection's Python methods (_deliver, _take, _send, _flush, ...).
 *
 * __anext__ returns a Receive: an awaitable that is also the future-like object its task
 * waits on, so a message needs neither a coroutine frame nor an asyncio.Future. send()
 * does its work when called and returns DONE, an awaitable that is already complete
 * (or the coroutine of the slow path).
 *
 * tether/asyncio/_core.py holds the pure-Python reference; the asyncio tests run
 * against both. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <errno.h>
#include <sys/socket.h>

#include "_protocol_core.h"

/* Frames queued before the replies to a burst of requests are written (COALESCE_FRAMES
 * in _core.py). */
#define COALESCE_FRAMES 16

static PyObject *state_open;        /* tether.protocol.connection.State.OPEN */
static PyObject *current_tasks;     /* asyncio.tasks._current_tasks: loop -> running task */
static PyObject *cancelled_error;   /* asyncio.CancelledError */
static PyObject *invalid_state;     /* asyncio.InvalidStateError */
/* tether.protocol._speedups.ProtocolCore: a protocol of this type has its per-message
 * fields read here directly; NULL when that accelerator is not in use. */
static PyTypeObject *protocol_core_type;
static ProtocolCoreAPI *protocol_api;

static ProtocolCoreObject *
protocol_core(PyObject *protocol)
{
    if (protocol_core_type != NULL && PyObject_TypeCheck(protocol, protocol_core_type)) {
        return (ProtocolCoreObject *)protocol;
    }
    return NULL;
}

static PyObject *str_buffer_updated, *str_call_soon, *str_close_transport, *str_context,
    *str_deliver, *str_events_received, *str_failure_pending, *str_flush, *str_get_buffer,
    *str_has_data_to_send, *str_opening_data, *str_partial_frame, *str_popleft,
    *str_receive_data, *str_requeue, *str_send, *str_send_binary, *str_send_text,
    *str_sent, *str_set_result, *str_state, *str_take, *str_wait_drain, *str_done,
    *str_cancel, *str_is_closing, *str_write, *str_write_many, *str_close, *str_data_to_send,
    *str_sock, *str_reader_on, *str_protocol, *str_fd, *str_fatal_error, *str_read_eof,
    *str_write_eof, *str_closing, *str_buffer, *str_write_slow, *str_buffer_rest,
    *str_sink_failed, *str_locked;

static PyObject *minus_one;  /* -1, the size hint of every read */

static PyObject *context_kwnames;   /* ("context",) */

#ifndef Py_TPFLAGS_HAVE_AM_SEND
#define Py_TPFLAGS_HAVE_AM_SEND 0  /* am_send is always used from Python 3.11 */
#endif

#define IS_NONE(o) ((o) == NULL || (o) == Py_None)

/* ConnectionCore: fields */

typedef struct {
    PyObject_HEAD
    PyObject *protocol;
    PyObject *transport;
    PyObject *loop;
    PyObject *listeners;
    PyObject *shared;
    PyObject *messages;
    PyObject *recv_waiter;
    PyObject *sink;
    PyObject *flush_handle;
    PyObject *fragment_lock;
    PyObject *close_exc;
    /* Numbers as ints and flags as True/False: Python code uses these fields as much as
     * C does, and the interpreter specializes attribute access to object slots only. */
    PyObject *reads;
    PyObject *queued_bytes;
    PyObject *pending_out;
    PyObject *pending_frames;
    PyObject *write_limit_high;
    PyObject *own_buffer;
    PyObject *opening;
    PyObject *delivering;
    PyObject *reading_paused;
    PyObject *writing_paused;
} ConnObject;

#define CONN_FIELDS(X)                                                                    \
    X(protocol) X(transport) X(loop) X(listeners) X(shared) X(messages) X(recv_waiter)    \
    X(sink) X(flush_handle) X(fragment_lock) X(close_exc) X(reads) X(queued_bytes)        \
    X(pending_out) X(pending_frames) X(write_limit_high) X(own_buffer) X(opening)         \
    X(delivering) X(reading_paused) X(writing_paused)

/* field += delta for a numeric field; -1 with an exception set. */
static int
add_to(PyObject **field, Py_ssize_t delta)
{
    Py_ssize_t value = core_size(*field);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    PyObject *sum = PyLong_FromSsize_t(value + delta);
    if (sum == NULL) {
        return -1;
    }
    Py_XSETREF(*field, sum);
    return 0;
}

static void
set_flag(PyObject **field, int value)
{
    Py_XSETREF(*field, Py_NewRef(value ? Py_True : Py_False));
}

static PyTypeObject ConnType;
static PyTypeObject ReceiveType;
static PyTypeObject DoneType;
static PyObject *done_singleton;

/* Receive: the awaitable of one received message */

enum {
    R_NEW,        /* not started */
    R_WAITING,    /* registered as the connection's receiver, yielded to its task */
    R_DONE,       /* resolved: result is the message, or None to look again */
    R_CANCELLED,  /* cancelled while waiting */
    R_FINISHED,   /* returned or raised */
};

typedef struct {
    PyObject_HEAD
    ConnObject *conn;
    PyObject *result;
    PyObject *cb;          /* the first done callback and its context */
    PyObject *cb_context;
    PyObject *more;        /* list of (callback, context) after the first, or NULL */
    PyObject *cancel_msg;
    char state;
    char iterating;
    char blocking;         /* _asyncio_future_blocking */
    char cancelled;
} ReceiveObject;

static int
truth_attr(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    int t = (value == Py_True) ? 1 : (value == Py_False ? 0 : PyObject_IsTrue(value));
    Py_DECREF(value);
    return t;
}

static int
truth(PyObject *obj)
{
    if (IS_NONE(obj) || obj == Py_False) {
        return 0;
    }
    if (obj == Py_True) {
        return 1;
    }
    return PyObject_IsTrue(obj);
}

static void
set_field(PyObject **field, PyObject *value)
{
    PyObject *old = *field;
    Py_INCREF(value);
    *field = value;
    Py_XDECREF(old);
}

/* loop.call_soon(callback, arg, context=context) */
static int
call_soon(PyObject *loop, PyObject *callback, PyObject *arg, PyObject *context)
{
    PyObject *method = PyObject_GetAttr(loop, str_call_soon);
    if (method == NULL) {
        return -1;
    }
    PyObject *res;
    if (arg == NULL) {
        PyObject *args[2] = {callback, context};
        res = context == NULL ? PyObject_Vectorcall(method, args, 1, NULL)
                              : PyObject_Vectorcall(method, args, 1, context_kwnames);
    }
    else {
        PyObject *args[3] = {callback, arg, context};
        res = context == NULL ? PyObject_Vectorcall(method, args, 2, NULL)
                              : PyObject_Vectorcall(method, args, 2, context_kwnames);
    }
    Py_DECREF(method);
    if (res == NULL) {
        return -1;
    }
    /* The handle is returned; only the connection's flush keeps one. */
    Py_DECREF(res);
    return 0;
}

/* protocol.failure_pending / partial_frame / close_transport */
static int
protocol_flag(PyObject *protocol, size_t offset, PyObject *name)
{
    ProtocolCoreObject *pc = protocol_core(protocol);
    if (pc != NULL) {
        return core_flag(*(PyObject **)((char *)pc + offset));
    }
    return truth_attr(protocol, name);
}

#define FAILURE_PENDING(p) \
    protocol_flag((p), offsetof(ProtocolCoreObject, failure_pending), str_failure_pending)
#define PARTIAL_FRAME(p) \
    protocol_flag((p), offsetof(ProtocolCoreObject, partial_frame), str_partial_frame)
#define CLOSE_TRANSPORT(p) \
    protocol_flag((p), offsetof(ProtocolCoreObject, close_transport), str_close_transport)

/* protocol.events_received() or protocol.data_to_send(): the list, and a fresh one in
 * its place. */
static PyObject *
protocol_take(PyObject *protocol, int events)
{
    ProtocolCoreObject *pc = protocol_core(protocol);
    if (pc == NULL || !PyList_CheckExact(events ? pc->events : pc->out)) {
        return PyObject_CallMethodNoArgs(protocol, events ? str_events_received
                                                          : str_data_to_send);
    }
    PyObject **field = events ? &pc->events : &pc->out;
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL) {
        return NULL;
    }
    PyObject *taken = *field;
    *field = fresh;
    return taken;
}

static ReceiveObject *
receive_new(ConnObject *conn, int iterating)
{
    ReceiveObject *r = PyObject_GC_New(ReceiveObject, &ReceiveType);
    if (r == NULL) {
        return NULL;
    }
    Py_INCREF(conn);
    r->conn = conn;
    r->result = NULL;
    r->cb = NULL;
    r->cb_context = NULL;
    r->more = NULL;
    r->cancel_msg = NULL;
    r->state = R_NEW;
    r->iterating = (char)iterating;
    r->blocking = 0;
    r->cancelled = 0;
    PyObject_GC_Track(r);
    return r;
}

static int
receive_traverse(ReceiveObject *r, visitproc visit, void *arg)
{
    Py_VISIT(r->conn);
    Py_VISIT(r->result);
    Py_VISIT(r->cb);
    Py_VISIT(r->cb_context);
    Py_VISIT(r->more);
    Py_VISIT(r->cancel_msg);
    return 0;
}

/* The connection is kept until the receive is freed, so that every method can use it:
 * the connection's own tp_clear breaks the cycle through its receiver. */
static int
receive_clear(ReceiveObject *r)
{
    Py_CLEAR(r->result);
    Py_CLEAR(r->cb);
    Py_CLEAR(r->cb_context);
    Py_CLEAR(r->more);
    Py_CLEAR(r->cancel_msg);
    return 0;
}

static void
receive_dealloc(ReceiveObject *r)
{
    PyObject_GC_UnTrack(r);
    receive_clear(r);
    Py_CLEAR(r->conn);
    PyObject_GC_Del(r);
}

static int
receive_is_done(ReceiveObject *r)
{
    return r->state != R_NEW && r->state != R_WAITING;
}

/* The connection no longer has this receiver waiting. */
static void
receive_unregister(ReceiveObject *r)
{
    ConnObject *conn = r->conn;
    if (conn != NULL && conn->recv_waiter == (PyObject *)r) {
        set_field(&conn->recv_waiter, Py_None);
    }
}

/* Schedule every done callback with the loop, as a resolved future does. */
static int
receive_schedule_callbacks(ReceiveObject *r)
{
    PyObject *cb = r->cb, *context = r->cb_context, *more = r->more;
    r->cb = r->cb_context = r->more = NULL;
    int failed = 0;
    if (cb != NULL) {
        failed = call_soon(r->conn->loop, cb, (PyObject *)r, context);
    }
    if (more != NULL) {
        for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(more); i++) {
            PyObject *pair = PyList_GET_ITEM(more, i);
            failed = call_soon(r->conn->loop, PyTuple_GET_ITEM(pair, 0), (PyObject *)r,
                               PyTuple_GET_ITEM(pair, 1));
        }
    }
    Py_XDECREF(cb);
    Py_XDECREF(context);
    Py_XDECREF(more);
    return failed ? -1 : 0;
}

static int
is_task_wakeup(PyObject *cb)
{
    return PyCFunction_Check(cb) &&
           strcmp(((PyCFunctionObject *)cb)->m_ml->ml_name, "task_wakeup") == 0;
}

/* Resolve a waiting Receive with message (None: look at the queue again). When its only
 * done callback is the wakeup of a C asyncio task and no task is running, that wakeup
 * runs now, in the task's context, as the loop would have run it a moment later; any
 * other callback is scheduled with the loop. */
static int
receive_resolve(ReceiveObject *r, PyObject *message)
{
    if (receive_is_done(r)) {
        PyErr_SetString(invalid_state, "invalid state");
        return -1;
    }
    set_field(&r->result, message);
    r->state = R_DONE;
    PyObject *cb = r->cb;
    if (cb != NULL && r->more == NULL && is_task_wakeup(cb)) {
        PyObject *running = PyDict_GetItemWithError(current_tasks, r->conn->loop);
        if (running == NULL && PyErr_Occurred()) {
            return -1;
        }
        if (running == NULL) {
            PyObject *context = r->cb_context;
            r->cb = r->cb_context = NULL;
            int failed = PyContext_Enter(context);
            if (!failed) {
                PyObject *res = PyObject_CallOneArg(cb, (PyObject *)r);
                failed = PyContext_Exit(context) < 0 || res == NULL;
                Py_XDECREF(res);
            }
            Py_DECREF(cb);
            Py_DECREF(context);
            return failed ? -1 : 0;
        }
    }
    return receive_schedule_callbacks(r);
}

/* The next message for this receiver: queued, from the connection's _take, or, when
 * there is none, registration as the waiting receiver (returns PYGEN_NEXT with self). */
static PySendResult
receive_take(ReceiveObject *r, PyObject **presult)
{
    ConnObject *conn = r->conn;
    PyObject *messages = Py_NewRef(conn->messages == NULL ? Py_None : conn->messages);
    Py_ssize_t queued = messages == Py_None ? 0 : PyObject_Size(messages);
    int paused = core_flag(conn->reading_paused);
    int pending = queued > 0 && paused == 0 ? FAILURE_PENDING(conn->protocol) : 1;
    if (queued < 0 || pending < 0 || paused < 0) {
        Py_DECREF(messages);
        goto error;
    }
    if (queued > 0 && !pending) {
        /* Fast path: a message is queued and no flow-control bookkeeping is due. */
        PyObject *message = PyObject_CallMethodNoArgs(messages, str_popleft);
        Py_DECREF(messages);
        if (message == NULL) {
            goto error;
        }
        Py_ssize_t size = PyObject_Size(message);
        if (size < 0) {
            Py_DECREF(message);
            goto error;
        }
        if (add_to(&conn->queued_bytes, -size) < 0) {
            Py_DECREF(message);
            goto error;
        }
        r->state = R_FINISHED;
        *presult = message;
        return PYGEN_RETURN;
    }
    Py_DECREF(messages);
    if (queued > 0 || !IS_NONE(conn->close_exc) || !IS_NONE(conn->recv_waiter)) {
        /* Bookkeeping, the end of the connection or another receiver: _take decides. */
        PyObject *taken = PyObject_CallMethodOneArg(
            (PyObject *)conn, str_take, r->iterating ? Py_True : Py_False);
        if (taken == NULL) {
            goto error;
        }
        if (taken != Py_None) {
            r->state = R_FINISHED;
            *presult = taken;
            return PYGEN_RETURN;
        }
        Py_DECREF(taken);
    }
    /* Wait: release the empty queue and become the receiver a read resolves. */
    set_field(&conn->messages, Py_None);
    set_field(&conn->recv_waiter, (PyObject *)r);
    r->state = R_WAITING;
    r->blocking = 1;
    Py_INCREF(r);
    *presult = (PyObject *)r;
    return PYGEN_NEXT;
error:
    r->state = R_FINISHED;
    *presult = NULL;
    return PYGEN_ERROR;
}

static PySendResult
receive_am_send(ReceiveObject *r, PyObject *arg, PyObject **presult)
{
    switch (r->state) {
    case R_NEW:
        return receive_take(r, presult);
    case R_DONE: {
        receive_unregister(r);
        PyObject *message = r->result;
        r->result = NULL;
        if (message != NULL && message != Py_None) {
            r->state = R_FINISHED;
            *presult = message;
            return PYGEN_RETURN;
        }
        Py_XDECREF(message);
        return receive_take(r, presult);
    }
    case R_CANCELLED:
        receive_unregister(r);
        r->state = R_FINISHED;
        if (r->cancel_msg != NULL) {
            PyErr_SetObject(cancelled_error, r->cancel_msg);
        }
        else {
            PyErr_SetNone(cancelled_error);
        }
        break;
    case R_WAITING:
        receive_unregister(r);
        r->state = R_FINISHED;
        PyErr_SetString(PyExc_RuntimeError, "await wasn't used with future");
        break;
    default:
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited receive");
        break;
    }
    *presult = NULL;
    return PYGEN_ERROR;
}

static PyObject *
receive_iternext(ReceiveObject *r)
{
    PyObject *result;
    PySendResult status = receive_am_send(r, Py_None, &result);
    if (status == PYGEN_RETURN) {
        if (result == Py_None) {
            Py_DECREF(result);
            return NULL;
        }
        /* An instance, so that a tuple is the value rather than the arguments. */
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, result);
        Py_DECREF(result);
        if (stop != NULL) {
            PyErr_SetObject(PyExc_StopIteration, stop);
            Py_DECREF(stop);
        }
        return NULL;
    }
    return result;
}

static PyObject *
receive_send(ReceiveObject *r, PyObject *arg)
{
    return receive_iternext(r);
}

/* Give back a message that was handed over but not taken, and stop waiting. */
static int
receive_abandon(ReceiveObject *r)
{
    receive_unregister(r);
    PyObject *message = r->result;
    r->result = NULL;
    int state = r->state;
    r->state = R_FINISHED;
    if (state == R_DONE && message != NULL && message != Py_None) {
        PyObject *res = PyObject_CallMethodOneArg((PyObject *)r->conn, str_requeue, message);
        Py_DECREF(message);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
        return 0;
    }
    Py_XDECREF(message);
    return 0;
}

static PyObject *
receive_throw(ReceiveObject *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    if (receive_abandon(r) < 0) {
        return NULL;
    }
    PyObject *typ = args[0];
    PyObject *val = nargs > 1 ? args[1] : NULL;
    PyObject *tb = nargs > 2 ? args[2] : NULL;
    if (PyExceptionInstance_Check(typ)) {
        if (!IS_NONE(val)) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return NULL;
        }
        if (!IS_NONE(tb)) {
            PyException_SetTraceback(typ, tb);
        }
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
        return NULL;
    }
    if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, IS_NONE(val) ? NULL : val);
        return NULL;
    }
    PyErr_SetString(PyExc_TypeError, "exceptions must be classes or instances deriving from BaseException");
    return NULL;
}

static PyObject *
receive_close(ReceiveObject *r, PyObject *unused)
{
    if (receive_abandon(r) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
receive_await(ReceiveObject *r)
{
    Py_INCREF(r);
    return (PyObject *)r;
}

/* The future-like side, for the task that waits on it. */

static PyObject *
receive_get_loop(ReceiveObject *r, PyObject *unused)
{
    Py_INCREF(r->conn->loop);
    return r->conn->loop;
}

static PyObject *
receive_add_done_callback(ReceiveObject *r, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames)
{
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError, "add_done_callback() takes one positional argument");
        return NULL;
    }
    PyObject *context = NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_Compare(name, str_context) != 0) {
            PyErr_Format(PyExc_TypeError, "unexpected keyword argument %R", name);
            return NULL;
        }
        context = args[nargs + i];
    }
    PyObject *fn = args[0];
    if (IS_NONE(context)) {
        context = PyContext_CopyCurrent();
        if (context == NULL) {
            return NULL;
        }
    }
    else {
        Py_INCREF(context);
    }
    if (receive_is_done(r)) {
        int failed = call_soon(r->conn->loop, fn, (PyObject *)r, context);
        Py_DECREF(context);
        if (failed) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    if (r->cb == NULL) {
        Py_INCREF(fn);
        r->cb = fn;
        r->cb_context = context;
        Py_RETURN_NONE;
    }
    if (r->more == NULL && (r->more = PyList_New(0)) == NULL) {
        Py_DECREF(context);
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, fn, context);
    Py_DECREF(context);
    if (pair == NULL) {
        return NULL;
    }
    int failed = PyList_Append(r->more, pair);
    Py_DECREF(pair);
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
receive_remove_done_callback(ReceiveObject *r, PyObject *fn)
{
    Py_ssize_t removed = 0;
    if (r->more != NULL) {
        for (Py_ssize_t i = PyList_GET_SIZE(r->more) - 1; i >= 0; i--) {
            int eq = PyObject_RichCompareBool(
                PyTuple_GET_ITEM(PyList_GET_ITEM(r->more, i), 0), fn, Py_EQ);
            if (eq < 0) {
                return NULL;
            }
            if (eq) {
                if (PySequence_DelItem(r->more, i) < 0) {
                    return NULL;
                }
                removed++;
            }
        }
    }
    if (r->cb != NULL) {
        int eq = PyObject_RichCompareBool(r->cb, fn, Py_EQ);
        if (eq < 0) {
            return NULL;
        }
        if (eq) {
            Py_CLEAR(r->cb);
            Py_CLEAR(r->cb_context);
            removed++;
            /* Keep the first callback in the first place. */
            if (r->more != NULL && PyList_GET_SIZE(r->more) > 0) {
                PyObject *pair = PyList_GET_ITEM(r->more, 0);
                r->cb = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
                r->cb_context = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
                if (PySequence_DelItem(r->more, 0) < 0) {
                    return NULL;
                }
            }
        }
    }
    if (r->more != NULL && PyList_GET_SIZE(r->more) == 0) {
        Py_CLEAR(r->more);
    }
    return PyLong_FromSsize_t(removed);
}

static PyObject *
receive_done(ReceiveObject *r, PyObject *unused)
{
    return PyBool_FromLong(receive_is_done(r));
}

static PyObject *
receive_cancelled_m(ReceiveObject *r, PyObject *unused)
{
    return PyBool_FromLong(r->cancelled);
}

static int
receive_raise_if_not_resolved(ReceiveObject *r)
{
    if (r->cancelled) {
        if (r->cancel_msg != NULL) {
            PyErr_SetObject(cancelled_error, r->cancel_msg);
        }
        else {
            PyErr_SetNone(cancelled_error);
        }
        return -1;
    }
    if (!receive_is_done(r)) {
        PyErr_SetString(invalid_state, "Result is not set.");
        return -1;
    }
    return 0;
}

static PyObject *
receive_result(ReceiveObject *r, PyObject *unused)
{
    if (receive_raise_if_not_resolved(r) < 0) {
        return NULL;
    }
    PyObject *result = r->result == NULL ? Py_None : r->result;
    Py_INCREF(result);
    return result;
}

static PyObject *
receive_exception(ReceiveObject *r, PyObject *unused)
{
    if (receive_raise_if_not_resolved(r) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
receive_cancel(ReceiveObject *r, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *msg = NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs + nkw > 1) {
        PyErr_SetString(PyExc_TypeError, "cancel() takes at most one argument");
        return NULL;
    }
    if (nargs == 1) {
        msg = args[0];
    }
    else if (nkw == 1) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, 0);
        if (!PyUnicode_Check(name) || PyUnicode_CompareWithASCIIString(name, "msg") != 0) {
            PyErr_Format(PyExc_TypeError, "unexpected keyword argument %R", name);
            return NULL;
        }
        msg = args[0];
    }
    if (receive_is_done(r)) {
        Py_RETURN_FALSE;
    }
    r->state = R_CANCELLED;
    r->cancelled = 1;
    if (!IS_NONE(msg)) {
        Py_INCREF(msg);
        r->cancel_msg = msg;
    }
    if (receive_schedule_callbacks(r) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyObject *
receive_set_result(ReceiveObject *r, PyObject *value)
{
    if (receive_is_done(r)) {
        PyErr_SetString(invalid_state, "invalid state");
        return NULL;
    }
    set_field(&r->result, value);
    r->state = R_DONE;
    if (receive_schedule_callbacks(r) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
receive_get_blocking(ReceiveObject *r, void *closure)
{
    /* None until started: asyncio.isfuture() is then false, so ensure_future(),
     * wait_for() and gather() run it in a task, as they would a coroutine. */
    if (r->state == R_NEW) {
        Py_RETURN_NONE;
    }
    return PyBool_FromLong(r->blocking);
}

static int
receive_set_blocking(ReceiveObject *r, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete _asyncio_future_blocking");
        return -1;
    }
    int t = PyObject_IsTrue(value);
    if (t < 0) {
        return -1;
    }
    r->blocking = (char)t;
    return 0;
}

static PyObject *
receive_repr(ReceiveObject *r)
{
    static const char *names[] = {"new", "waiting", "done", "cancelled", "finished"};
    return PyUnicode_FromFormat("<Receive %s>", names[(int)r->state]);
}

static PyMethodDef receive_methods[] = {
    {"send", (PyCFunction)receive_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))receive_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)receive_close, METH_NOARGS, NULL},
    {"get_loop", (PyCFunction)receive_get_loop, METH_NOARGS, NULL},
    {"add_done_callback", (PyCFunction)(void (*)(void))receive_add_done_callback,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"remove_done_callback", (PyCFunction)receive_remove_done_callback, METH_O, NULL},
    {"done", (PyCFunction)receive_done, METH_NOARGS, NULL},
    {"cancelled", (PyCFunction)receive_cancelled_m, METH_NOARGS, NULL},
    {"result", (PyCFunction)receive_result, METH_NOARGS, NULL},
    {"exception", (PyCFunction)receive_exception, METH_NOARGS, NULL},
    {"cancel", (PyCFunction)(void (*)(void))receive_cancel, METH_FASTCALL | METH_KEYWORDS,
     NULL},
    {"set_result", (PyCFunction)receive_set_result, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef receive_getset[] = {
    {"_asyncio_future_blocking", (getter)receive_get_blocking, (setter)receive_set_blocking,
     NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyAsyncMethods receive_as_async = {
    .am_await = (unaryfunc)receive_await,
    .am_send = (sendfunc)receive_am_send,
};

/* Attribute lookup by C string, as PyObject_GetAttrString does it: asyncio's task asks
 * for "result" this way when it wakes up, and answering without making a str for the
 * name (whose lookup then misses the type's method cache) saves most of that call. */
static PyObject *
receive_getattr(PyObject *self, char *name)
{
    if (strcmp(name, "result") == 0) {
        static PyMethodDef result_def = {"result", (PyCFunction)receive_result, METH_NOARGS,
                                         NULL};
        return PyCFunction_New(&result_def, self);
    }
    PyObject *key = PyUnicode_FromString(name);
    if (key == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_GenericGetAttr(self, key);
    Py_DECREF(key);
    return value;
}

static PyTypeObject ReceiveType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tether.asyncio._speedups.Receive",
    .tp_doc = "The next message of a connection, as an awaitable; also the future its "
              "task waits on.",
    .tp_basicsize = sizeof(ReceiveObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_AM_SEND,
    .tp_dealloc = (destructor)receive_dealloc,
    .tp_traverse = (traverseproc)receive_traverse,
    .tp_clear = (inquiry)receive_clear,
    .tp_repr = (reprfunc)receive_repr,
    .tp_getattr = (getattrfunc)receive_getattr,
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_as_async = &receive_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)receive_iternext,
    .tp_methods = receive_methods,
    .tp_getset = receive_getset,
};

/* Done: an awaitable that is already complete, with the result None */

static PySendResult
done_am_send(PyObject *self, PyObject *arg, PyObject **presult)
{
    Py_INCREF(Py_None);
    *presult = Py_None;
    return PYGEN_RETURN;
}

static PyObject *
done_iternext(PyObject *self)
{
    return NULL;
}

static PyObject *
done_send(PyObject *self, PyObject *arg)
{
    PyErr_SetNone(PyExc_StopIteration);
    return NULL;
}

static PyObject *
done_throw(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    PyObject *typ = args[0];
    PyObject *val = nargs > 1 ? args[1] : NULL;
    if (PyExceptionInstance_Check(typ)) {
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    }
    else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, IS_NONE(val) ? NULL : val);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
    }
    return NULL;
}

static PyObject *
done_close(PyObject *self, PyObject *unused)
{
    Py_RETURN_NONE;
}

static PyObject *
done_await(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

static PyMethodDef done_methods[] = {
    {"send", (PyCFunction)done_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))done_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)done_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods done_as_async = {
    .am_await = done_await,
    .am_send = done_am_send,
};

static PyTypeObject DoneType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tether.asyncio._speedups.Done",
    .tp_doc = "An awaitable that is complete: awaiting it gives None at once.",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_AM_SEND,
    .tp_as_async = &done_as_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = done_iternext,
    .tp_methods = done_methods,
};

/* wake(waiter, loop, message) */

static PyObject *
wake(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "wake() takes 3 arguments");
        return NULL;
    }
    PyObject *waiter = args[0];
    if (Py_IS_TYPE(waiter, &ReceiveType)) {
        if (receive_resolve((ReceiveObject *)waiter, args[2]) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return PyObject_CallMethodOneArg(waiter, str_set_result, args[2]);
}

/* ConnectionCore: methods */

static PyObject *
conn_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    ConnObject *self = (ConnObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
#define INIT_FIELD(name) self->name = Py_NewRef(Py_None);
    CONN_FIELDS(INIT_FIELD)
#undef INIT_FIELD
    PyObject **counts[] = {&self->reads, &self->queued_bytes, &self->pending_out,
                           &self->pending_frames, &self->write_limit_high};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        Py_SETREF(*counts[i], PyLong_FromLong(0));
        if (*counts[i] == NULL) {
            Py_DECREF(self);
            return NULL;
        }
    }
    PyObject **flags[] = {&self->own_buffer, &self->opening, &self->delivering,
                          &self->reading_paused, &self->writing_paused};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        set_flag(flags[i], 0);
    }
    return (PyObject *)self;
}

static int
conn_traverse(ConnObject *self, visitproc visit, void *arg)
{
#define VISIT_FIELD(name) Py_VISIT(self->name);
    CONN_FIELDS(VISIT_FIELD)
#undef VISIT_FIELD
    return 0;
}

static int
conn_clear(ConnObject *self)
{
#define CLEAR_FIELD(name) Py_CLEAR(self->name);
    CONN_FIELDS(CLEAR_FIELD)
#undef CLEAR_FIELD
    return 0;
}

static void
conn_dealloc(ConnObject *self)
{
    PyObject_GC_UnTrack(self);
    conn_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
conn_get_buffer(ConnObject *self, PyObject *sizehint)
{
    int partial = PARTIAL_FRAME(self->protocol);
    if (partial < 0) {
        return NULL;
    }
    if (partial) {
        PyObject *view = PyObject_CallMethodOneArg(self->protocol, str_get_buffer, sizehint);
        if (view == NULL) {
            return NULL;
        }
        set_flag(&self->own_buffer, 1);
        return view;
    }
    /* No frame is pending: read into the buffer every connection of the thread shares. */
    set_flag(&self->own_buffer, 0);
    Py_INCREF(self->shared);
    return self->shared;
}

static PyObject *conn_flush(ConnObject *self, PyObject *unused);

/* SocketTransport's accelerated methods (below), and the objects they are on its class. */
static PyTypeObject *transport_type;
static PyObject *write_method, *is_closing_method;
static int transport_flag(PyObject *transport, int slot);
static int transport_write_now(PyObject *transport, PyObject *data);
#define T_CLOSING_SLOT 5

/* Flush when the protocol has bytes to write or asks for the transport to be closed. */
static int
flush_if_due(ConnObject *self)
{
    PyObject *protocol = self->protocol;
    int flush;
    ProtocolCoreObject *pc = protocol_core(protocol);
    if (pc != NULL && PyList_CheckExact(pc->out)) {
        flush = PyList_GET_SIZE(pc->out) > 0;
    }
    else {
        PyObject *has = PyObject_CallMethodNoArgs(protocol, str_has_data_to_send);
        if (has == NULL) {
            return -1;
        }
        flush = PyObject_IsTrue(has);
        Py_DECREF(has);
    }
    if (flush == 0) {
        flush = CLOSE_TRANSPORT(protocol);
    }
    if (flush <= 0) {
        return flush;
    }
    PyObject *r = conn_flush(self, NULL);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Hand the leading messages of events to the sink; return how many it took (see
 * PyConnectionCore._feed_sink), or -1 with an exception set. */
static Py_ssize_t
feed_sink(ConnObject *self, PyObject *events)
{
    set_flag(&self->delivering, 1);
    Py_ssize_t taken = 0, n = PyList_GET_SIZE(events);
    for (; taken < n; taken++) {
        PyObject *event = PyList_GET_ITEM(events, taken);
        PyObject *sink = self->sink;
        if (IS_NONE(sink) || !(PyBytes_CheckExact(event) || PyUnicode_CheckExact(event))) {
            break;
        }
        Py_INCREF(sink);
        PyObject *r = PyObject_CallOneArg(sink, event);
        Py_DECREF(sink);
        int done;
        if (r != NULL) {
            done = PyObject_IsTrue(r);
            Py_DECREF(r);
        }
        else if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            if (tb != NULL) {
                PyException_SetTraceback(value, tb);
            }
            Py_XDECREF(type);
            Py_XDECREF(tb);
            r = PyObject_CallMethodOneArg((PyObject *)self, str_sink_failed, value);
            Py_DECREF(value);
            Py_XDECREF(r);
            done = r == NULL ? -1 : 1;  /* dropped: the connection is failing */
        }
        else {
            done = -1;
        }
        if (done < 0) {
            set_flag(&self->delivering, 0);
            return -1;
        }
        if (!done) {
            Py_XSETREF(self->sink, Py_NewRef(Py_None));
            break;
        }
    }
    set_flag(&self->delivering, 0);
    return taken;
}

static PyObject *
conn_process_events(ConnObject *self, PyObject *unused)
{
    PyObject *protocol = self->protocol;
    PyObject *events = protocol_take(protocol, 1);
    if (events == NULL) {
        return NULL;
    }
    PyObject *waiter = self->recv_waiter == NULL ? Py_None : self->recv_waiter;
    Py_INCREF(waiter);
    PyObject *res = NULL;
    int listeners = truth(self->listeners);
    if (listeners < 0) {
        goto done;
    }
    if (PyList_CheckExact(events) && PyList_GET_SIZE(events) == 1 && waiter != Py_None &&
        IS_NONE(self->sink) && !listeners) {
        int pending = FAILURE_PENDING(protocol);
        if (pending < 0) {
            goto done;
        }
        int waiting;
        if (pending) {
            waiting = 0;
        }
        else if (Py_IS_TYPE(waiter, &ReceiveType)) {
            waiting = !receive_is_done((ReceiveObject *)waiter);
        }
        else {
            PyObject *done = PyObject_CallMethodNoArgs(waiter, str_done);
            if (done == NULL) {
                goto done;
            }
            waiting = !PyObject_IsTrue(done);
            Py_DECREF(done);
        }
        PyObject *message = PyList_GET_ITEM(events, 0);
        if (waiting && (PyBytes_CheckExact(message) || PyUnicode_CheckExact(message))) {
            /* The common case: one message for a receiver waiting on an empty queue. */
            if (flush_if_due(self) < 0) {
                goto done;
            }
            if (Py_IS_TYPE(waiter, &ReceiveType)) {
                if (receive_resolve((ReceiveObject *)waiter, message) < 0) {
                    goto done;
                }
            }
            else {
                PyObject *r = PyObject_CallMethodOneArg(waiter, str_set_result, message);
                if (r == NULL) {
                    goto done;
                }
                Py_DECREF(r);
            }
            res = Py_NewRef(Py_None);
            goto done;
        }
    }
    if (!IS_NONE(self->sink) && !listeners && PyList_CheckExact(events)) {
        /* Messages for the sink (an RPC server, say), answered within this read. */
        Py_ssize_t start = feed_sink(self, events);
        if (start < 0) {
            goto done;
        }
        if (start == PyList_GET_SIZE(events)) {
            int pending = FAILURE_PENDING(protocol);
            if (pending < 0) {
                goto done;
            }
            if (pending) {
                PyObject *none_events = PyList_New(0);
                if (none_events == NULL) {
                    goto done;
                }
                res = PyObject_CallMethodObjArgs((PyObject *)self, str_deliver, none_events,
                                                 Py_None, NULL);
                Py_DECREF(none_events);
                goto done;
            }
            res = flush_if_due(self) < 0 ? NULL : Py_NewRef(Py_None);
            goto done;
        }
        PyObject *rest = PyList_GetSlice(events, start, PyList_GET_SIZE(events));
        if (rest == NULL) {
            goto done;
        }
        Py_SETREF(events, rest);
    }
    res = PyObject_CallMethodObjArgs((PyObject *)self, str_deliver, events, waiter, NULL);
done:
    Py_DECREF(events);
    Py_DECREF(waiter);
    return res;
}

static PyObject *
conn_buffer_updated(ConnObject *self, PyObject *nbytes)
{
    PyObject *res;
    int own = core_flag(self->own_buffer);
    int opening = core_flag(self->opening);
    if (own < 0 || opening < 0) {
        return NULL;
    }
    if (own) {
        res = PyObject_CallMethodOneArg(self->protocol, str_buffer_updated, nbytes);
    }
    else {
        Py_ssize_t n = PyNumber_AsSsize_t(nbytes, PyExc_OverflowError);
        if (n == -1 && PyErr_Occurred()) {
            return NULL;
        }
        ProtocolCoreObject *pc = protocol_core(self->protocol);
        if (pc != NULL && !opening && PyMemoryView_Check(self->shared) && n >= 0 &&
            n <= PyMemoryView_GET_BUFFER(self->shared)->len &&
            PyBuffer_IsContiguous(PyMemoryView_GET_BUFFER(self->shared), 'C')) {
            /* protocol.receive_data(self._shared[:nbytes]), without the slice */
            if (protocol_api->receive_prefix(pc, self->shared, n) < 0) {
                return NULL;
            }
            res = Py_NewRef(Py_None);
        }
        else {
            PyObject *view = PySequence_GetSlice(self->shared, 0, n);
            if (view == NULL) {
                return NULL;
            }
            if (opening) {
                PyObject *data = PyBytes_FromObject(view);
                Py_DECREF(view);
                if (data == NULL) {
                    return NULL;
                }
                res = PyObject_CallMethodOneArg((PyObject *)self, str_opening_data, data);
                Py_DECREF(data);
                return res;
            }
            res = PyObject_CallMethodOneArg(self->protocol, str_receive_data, view);
            Py_DECREF(view);
        }
    }
    if (res == NULL) {
        return NULL;
    }
    Py_DECREF(res);
    if (add_to(&self->reads, 1) < 0) {
        return NULL;
    }
    return conn_process_events(self, NULL);
}

static PyObject *
call_noargs(PyObject *obj, PyObject *name)
{
    PyObject *res = PyObject_CallMethodNoArgs(obj, name);
    if (res == NULL) {
        return NULL;
    }
    Py_DECREF(res);
    return Py_None;  /* borrowed: only compared with NULL */
}

static PyObject *
conn_flush(ConnObject *self, PyObject *unused)
{
    if (!IS_NONE(self->flush_handle)) {
        PyObject *handle = self->flush_handle;
        self->flush_handle = Py_NewRef(Py_None);
        PyObject *res = call_noargs(handle, str_cancel);
        Py_DECREF(handle);
        if (res == NULL) {
            return NULL;
        }
    }
    PyObject *zero = PyLong_FromLong(0);
    if (zero == NULL) {
        return NULL;
    }
    Py_XSETREF(self->pending_out, Py_NewRef(zero));
    Py_XSETREF(self->pending_frames, zero);
    PyObject *transport = Py_NewRef(self->transport == NULL ? Py_None : self->transport);
    PyObject *out = protocol_take(self->protocol, 0);
    PyObject *res = NULL;
    if (out == NULL) {
        goto done;
    }
    if (transport == Py_None) {
        res = Py_NewRef(Py_None);
        goto done;
    }
    /* tether's own SocketTransport is called directly while its class has the C methods
     * (not overridden, not patched); any other transport through its methods. */
    int direct = transport_type != NULL && PyObject_TypeCheck(transport, transport_type) &&
                 _PyType_Lookup(Py_TYPE(transport), str_write) == write_method &&
                 _PyType_Lookup(Py_TYPE(transport), str_is_closing) == is_closing_method;
    int t;
    if (direct) {
        t = transport_flag(transport, T_CLOSING_SLOT);
    }
    else {
        PyObject *closing = PyObject_CallMethodNoArgs(transport, str_is_closing);
        if (closing == NULL) {
            goto done;
        }
        t = PyObject_IsTrue(closing);
        Py_DECREF(closing);
    }
    if (t) {
        res = t < 0 ? NULL : Py_NewRef(Py_None);
        goto done;
    }
    Py_ssize_t n = PyObject_Size(out);
    if (n < 0) {
        goto done;
    }
    if (n > 0) {
        PyObject *r;
        if (n == 1 && PyList_CheckExact(out)) {
            PyObject *data = PyList_GET_ITEM(out, 0);
            int slow = direct ? transport_write_now(transport, data) : 1;
            if (slow < 0) {
                goto done;
            }
            r = slow ? PyObject_CallMethodOneArg(transport, str_write, data) : Py_NewRef(Py_None);
        }
        else {
            r = PyObject_CallMethodOneArg((PyObject *)self, str_write_many, out);
        }
        if (r == NULL) {
            goto done;
        }
        Py_DECREF(r);
    }
    t = CLOSE_TRANSPORT(self->protocol);
    if (t < 0) {
        goto done;
    }
    if (t && call_noargs(transport, str_close) == NULL) {
        /* close() lets the transport write what is buffered first. */
        goto done;
    }
    res = Py_NewRef(Py_None);
done:
    Py_XDECREF(out);
    Py_DECREF(transport);
    return res;
}

static PyObject *
conn_anext(ConnObject *self)
{
    return (PyObject *)receive_new(self, 1);
}

static PyObject *
conn_receive(ConnObject *self, PyObject *iterating)
{
    int t = PyObject_IsTrue(iterating);
    if (t < 0) {
        return NULL;
    }
    return (PyObject *)receive_new(self, t);
}

/* What _sent does for a connection without listeners: write now, or schedule the write. */
static int
conn_sent(ConnObject *self, PyObject *message)
{
    Py_ssize_t size = PyObject_Size(message);
    if (size < 0 || add_to(&self->pending_out, size) < 0 ||
        add_to(&self->pending_frames, 1) < 0) {
        return -1;
    }
    Py_ssize_t pending = core_size(self->pending_out);
    Py_ssize_t frames = core_size(self->pending_frames);
    Py_ssize_t high = core_size(self->write_limit_high);
    int delivering = core_flag(self->delivering);
    if (delivering < 0 || PyErr_Occurred()) {
        return -1;
    }
    int now = pending >= high || frames >= COALESCE_FRAMES;
    if (!now) {
        int queued = truth(self->messages);
        if (queued < 0) {
            return -1;
        }
        now = !(queued || delivering);
    }
    if (now) {
        PyObject *r = conn_flush(self, NULL);
        if (r == NULL) {
            return -1;
        }
        Py_DECREF(r);
        return 0;
    }
    if (IS_NONE(self->flush_handle) && !delivering) {
        PyObject *flush = PyObject_GetAttr((PyObject *)self, str_flush);
        if (flush == NULL) {
            return -1;
        }
        PyObject *method = PyObject_GetAttr(self->loop, str_call_soon);
        if (method == NULL) {
            Py_DECREF(flush);
            return -1;
        }
        PyObject *handle = PyObject_CallOneArg(method, flush);
        Py_DECREF(method);
        Py_DECREF(flush);
        if (handle == NULL) {
            return -1;
        }
        Py_XSETREF(self->flush_handle, handle);
    }
    return 0;
}

static PyObject *
conn_send(ConnObject *self, PyObject *message)
{
    int text = PyUnicode_CheckExact(message);
    if (!IS_NONE(self->fragment_lock) || !(text || PyBytes_CheckExact(message))) {
        return PyObject_CallMethodOneArg((PyObject *)self, str_send, message);
    }
    PyObject *state;
    ProtocolCoreObject *pc = protocol_core(self->protocol);
    if (pc != NULL) {
        state = pc->state;
    }
    else {
        state = PyObject_GetAttr(self->protocol, str_state);
        if (state == NULL) {
            return NULL;
        }
        Py_DECREF(state);
    }
    if (state != state_open) {
        /* The slow path raises the right ConnectionClosed when awaited. */
        return PyObject_CallMethodOneArg((PyObject *)self, str_send, message);
    }
    PyObject *r;
    if (pc != NULL) {
        if (protocol_api->send_message(pc, message, text) < 0) {
            return NULL;
        }
    }
    else {
        r = PyObject_CallMethodOneArg(self->protocol, text ? str_send_text : str_send_binary,
                                      message);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    int listeners = truth(self->listeners);
    if (listeners < 0) {
        return NULL;
    }
    if (listeners) {
        r = PyObject_CallMethodOneArg((PyObject *)self, str_sent, message);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    else if (conn_sent(self, message) < 0) {
        return NULL;
    }
    int paused = core_flag(self->writing_paused);
    if (paused < 0) {
        return NULL;
    }
    if (paused) {
        return PyObject_CallMethodNoArgs((PyObject *)self, str_wait_drain);
    }
    Py_INCREF(done_singleton);
    return done_singleton;
}

static PyObject *
conn_send_nowait(ConnObject *self, PyObject *message)
{
    int paused = core_flag(self->writing_paused);
    if (paused != 0) {
        return paused < 0 ? NULL : Py_NewRef(Py_False);
    }
    ProtocolCoreObject *pc = protocol_core(self->protocol);
    PyObject *state = pc != NULL ? Py_NewRef(pc->state)
                                 : PyObject_GetAttr(self->protocol, str_state);
    if (state == NULL) {
        return NULL;
    }
    Py_DECREF(state);
    if (state != state_open) {
        Py_RETURN_FALSE;
    }
    if (!IS_NONE(self->fragment_lock)) {
        PyObject *locked = PyObject_CallMethodNoArgs(self->fragment_lock, str_locked);
        int t = locked == NULL ? -1 : PyObject_IsTrue(locked);
        Py_XDECREF(locked);
        if (t != 0) {
            return t < 0 ? NULL : Py_NewRef(Py_False);
        }
    }
    int text = PyUnicode_Check(message) && !PyBytes_CheckExact(message);
    if (pc != NULL && (PyBytes_CheckExact(message) || PyUnicode_CheckExact(message))) {
        if (protocol_api->send_message(pc, message, text) < 0) {
            return NULL;
        }
    }
    else {
        PyObject *r = PyObject_CallMethodOneArg(self->protocol,
                                                text ? str_send_text : str_send_binary, message);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    int listeners = truth(self->listeners);
    if (listeners < 0) {
        return NULL;
    }
    if (listeners) {
        PyObject *r = PyObject_CallMethodOneArg((PyObject *)self, str_sent, message);
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
    }
    else if (conn_sent(self, message) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyMethodDef conn_methods[] = {
    {"send_nowait", (PyCFunction)conn_send_nowait, METH_O,
     "Send a message now if the connection takes it without waiting.\n\n"
     "Returns True when the message was queued for writing, like send(); False, with\n"
     "nothing sent, when the connection is not open, its write buffer is above the\n"
     "high-water mark, or a fragmented message is being sent. Use await send() then:\n"
     "it waits for room."},
    {"get_buffer", (PyCFunction)conn_get_buffer, METH_O, NULL},
    {"buffer_updated", (PyCFunction)conn_buffer_updated, METH_O, NULL},
    {"_process_events", (PyCFunction)conn_process_events, METH_NOARGS,
     "Hand what the protocol parsed to the application, then write what is due."},
    {"_flush", (PyCFunction)conn_flush, METH_NOARGS,
     "Write what the protocol has queued, and close the transport if it asks to."},
    {"_receive", (PyCFunction)conn_receive, METH_O,
     "The next message; at the end, StopAsyncIteration when iterating."},
    {"send", (PyCFunction)conn_send, METH_O,
     "Send a message.\n\n"
     "A str is sent as a text message, a bytes-like object as binary. An iterable or\n"
     "async iterable of them is sent as one fragmented message, one frame per item (all\n"
     "items must be of the same kind). Await the result: it waits while the write\n"
     "buffer is above its high-water mark.\n\n"
     "Raises:\n    ConnectionClosed: the connection is closed."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef conn_members[] = {
    {"protocol", T_OBJECT_EX, offsetof(ConnObject, protocol), 0, NULL},
    {"transport", T_OBJECT_EX, offsetof(ConnObject, transport), 0, NULL},
    {"loop", T_OBJECT_EX, offsetof(ConnObject, loop), 0, NULL},
    {"listeners", T_OBJECT_EX, offsetof(ConnObject, listeners), 0, NULL},
    {"_shared", T_OBJECT_EX, offsetof(ConnObject, shared), 0, NULL},
    {"_messages", T_OBJECT_EX, offsetof(ConnObject, messages), 0, NULL},
    {"_recv_waiter", T_OBJECT_EX, offsetof(ConnObject, recv_waiter), 0, NULL},
    {"_sink", T_OBJECT_EX, offsetof(ConnObject, sink), 0, NULL},
    {"_flush_handle", T_OBJECT_EX, offsetof(ConnObject, flush_handle), 0, NULL},
    {"_fragment_lock", T_OBJECT_EX, offsetof(ConnObject, fragment_lock), 0, NULL},
    {"_close_exc", T_OBJECT_EX, offsetof(ConnObject, close_exc), 0, NULL},
    {"_reads", T_OBJECT_EX, offsetof(ConnObject, reads), 0, NULL},
    {"_queued_bytes", T_OBJECT_EX, offsetof(ConnObject, queued_bytes), 0, NULL},
    {"_pending_out", T_OBJECT_EX, offsetof(ConnObject, pending_out), 0, NULL},
    {"_pending_frames", T_OBJECT_EX, offsetof(ConnObject, pending_frames), 0, NULL},
    {"write_limit_high", T_OBJECT_EX, offsetof(ConnObject, write_limit_high), 0, NULL},
    {"_own_buffer", T_OBJECT_EX, offsetof(ConnObject, own_buffer), 0, NULL},
    {"_opening", T_OBJECT_EX, offsetof(ConnObject, opening), 0, NULL},
    {"_delivering", T_OBJECT_EX, offsetof(ConnObject, delivering), 0, NULL},
    {"_reading_paused", T_OBJECT_EX, offsetof(ConnObject, reading_paused), 0, NULL},
    {"_writing_paused", T_OBJECT_EX, offsetof(ConnObject, writing_paused), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyAsyncMethods conn_as_async = {
    .am_anext = (unaryfunc)conn_anext,
};

static PyTypeObject ConnType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tether.asyncio._speedups.ConnectionCore",
    .tp_doc = "The fields and per-message methods of a connection.",
    .tp_basicsize = sizeof(ConnObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = conn_new,
    .tp_dealloc = (destructor)conn_dealloc,
    .tp_traverse = (traverseproc)conn_traverse,
    .tp_clear = (inquiry)conn_clear,
    .tp_as_async = &conn_as_async,
    .tp_methods = conn_methods,
    .tp_members = conn_members,
};


/* tether.asyncio.transport.SocketTransport: the read callback, write and is_closing, in
 * C. They read the transport's slots and leave every case but the common one to its
 * Python methods (_fatal_error, _read_eof, _write, _buffer_rest). The socket is
 * non-blocking, so its calls return at once: the GIL is kept around them. */

enum { T_SOCK, T_READER_ON, T_PROTOCOL, T_FD, T_WRITE_EOF, T_CLOSING, T_BUFFER, T_SLOTS };
_Static_assert(T_CLOSING == T_CLOSING_SLOT, "T_CLOSING_SLOT");

static PyObject **transport_slot_names[T_SLOTS] = {
    &str_sock, &str_reader_on, &str_protocol, &str_fd, &str_write_eof, &str_closing, &str_buffer,
};

/* The class registered by use_transport_class, and where its slots are in an instance. */
static Py_ssize_t transport_offsets[T_SLOTS];

static PyObject *
use_transport_class(PyObject *module, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "a class is required");
        return NULL;
    }
    Py_ssize_t offsets[T_SLOTS];
    for (int i = 0; i < T_SLOTS; i++) {
        PyObject *descr = PyObject_GetAttr(cls, *transport_slot_names[i]);
        if (descr == NULL) {
            return NULL;
        }
        int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                 ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX;
        if (ok) {
            offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
        }
        Py_DECREF(descr);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%R is not a slot of %R", *transport_slot_names[i],
                         cls);
            return NULL;
        }
    }
    memcpy(transport_offsets, offsets, sizeof(offsets));
    Py_INCREF(cls);
    Py_XSETREF(transport_type, (PyTypeObject *)cls);
    Py_RETURN_NONE;
}

/* A new reference to the transport's slot, read directly from a registered class. */
static PyObject *
transport_get(PyObject *transport, int slot)
{
    if (transport_type != NULL && PyObject_TypeCheck(transport, transport_type)) {
        PyObject *value = *(PyObject **)((char *)transport + transport_offsets[slot]);
        if (value != NULL) {
            return Py_NewRef(value);
        }
    }
    return PyObject_GetAttr(transport, *transport_slot_names[slot]);
}

static int
transport_flag(PyObject *transport, int slot)
{
    PyObject *value = transport_get(transport, slot);
    if (value == NULL) {
        return -1;
    }
    int t = value == Py_True ? 1 : (value == Py_False ? 0 : PyObject_IsTrue(value));
    Py_DECREF(value);
    return t;
}

/* Whether the slot holds None; -1 with an exception set. */
static int
transport_none(PyObject *transport, int slot)
{
    PyObject *value = transport_get(transport, slot);
    if (value == NULL) {
        return -1;
    }
    Py_DECREF(value);
    return value == Py_None;
}

static int
transport_fd(PyObject *transport)
{
    PyObject *fd = transport_get(transport, T_FD);
    if (fd == NULL) {
        return -1;
    }
    long value = PyLong_AsLong(fd);
    Py_DECREF(fd);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (value < 0 || value > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "bad file descriptor");
        return -1;
    }
    return (int)value;
}

/* transport._fatal_error(exc, message) for the Exception being raised; other exceptions
 * (BaseException) propagate, as from the Python methods. */
static PyObject *
transport_fail(PyObject *transport, const char *message)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return NULL;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    PyObject *text = PyUnicode_FromString(message);
    PyObject *res = NULL;
    if (text != NULL) {
        res = PyObject_CallMethodObjArgs(transport, str_fatal_error, value, text, NULL);
        Py_DECREF(text);
    }
    Py_DECREF(value);
    return res;
}

/* Reads per read callback while each one fills the buffer it was given (transport.py's
 * _MAX_READS): a full buffer means the socket likely holds more, which is read at once
 * instead of after another turn of the event loop; the bound keeps one busy connection
 * from holding the loop. */
#define MAX_READS 4

/* One recv into the protocol's buffer and its hand-over: 1 if the read filled the
 * buffer, 0 if not (or the socket had nothing), -1 with an exception set. *res holds the
 * callback's result once it is decided (EOF or a reported failure). */
static int
transport_read_once(PyObject *transport, PyObject *protocol, int fd, PyObject **res)
{
    PyObject *buffer = PyObject_CallMethodOneArg(protocol, str_get_buffer, minus_one);
    if (buffer == NULL) {
        *res = transport_fail(transport, "protocol.get_buffer() failed");
        return *res == NULL ? -1 : 0;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE) < 0) {
        Py_DECREF(buffer);
        return -1;
    }
    Py_ssize_t size = view.len;
    ssize_t n = recv(fd, view.buf, (size_t)size, 0);
    int error = errno;
    PyBuffer_Release(&view);
    Py_DECREF(buffer);
    if (n < 0) {
        if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR) {
            return 0;
        }
        errno = error;
        PyErr_SetFromErrno(PyExc_OSError);
        *res = transport_fail(transport, "socket.recv_into() failed");
        return *res == NULL ? -1 : 0;
    }
    if (n == 0) {
        /* EOF from the peer. */
        *res = PyObject_CallMethodOneArg(transport, str_read_eof, protocol);
        return *res == NULL ? -1 : 0;
    }
    PyObject *count = PyLong_FromSsize_t(n);
    if (count == NULL) {
        return -1;
    }
    PyObject *r = PyObject_CallMethodOneArg(protocol, str_buffer_updated, count);
    Py_DECREF(count);
    if (r == NULL) {
        *res = transport_fail(transport, "protocol.buffer_updated() failed");
        return *res == NULL ? -1 : 0;
    }
    Py_DECREF(r);
    return n == size;
}

static PyObject *
transport_read_ready(PyObject *module, PyObject *transport)
{
    for (int reads = 0; reads < MAX_READS; reads++) {
        /* Checked before every read: the protocol may have paused reading, closed the
         * transport or been replaced during the one before. */
        int closed = transport_none(transport, T_SOCK);
        if (closed != 0) {
            return closed < 0 ? NULL : Py_NewRef(Py_None);
        }
        int reading = transport_flag(transport, T_READER_ON);
        if (reading <= 0) {
            return reading < 0 ? NULL : Py_NewRef(Py_None);
        }
        int fd = transport_fd(transport);
        if (fd < 0) {
            return NULL;
        }
        PyObject *protocol = transport_get(transport, T_PROTOCOL);
        if (protocol == NULL) {
            return NULL;
        }
        PyObject *res = NULL;
        int full = transport_read_once(transport, protocol, fd, &res);
        Py_DECREF(protocol);
        if (full < 0) {
            return NULL;
        }
        if (res != NULL) {
            return res;
        }
        if (!full) {
            break;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
transport_is_closing(PyObject *module, PyObject *transport)
{
    int closing = transport_flag(transport, T_CLOSING);
    if (closing < 0) {
        return NULL;
    }
    return PyBool_FromLong(closing);
}

/* write(data) for bytes while nothing is buffered; 1 when the slow path must take it. */
static int
transport_write_now(PyObject *transport, PyObject *data)
{
    if (!PyBytes_CheckExact(data) || PyBytes_GET_SIZE(data) == 0) {
        return 1;
    }
    /* Nothing buffered, and not closing or shut down. */
    int blocked = transport_flag(transport, T_WRITE_EOF);
    if (blocked == 0) {
        blocked = transport_flag(transport, T_CLOSING);
    }
    if (blocked == 0) {
        int idle = transport_none(transport, T_BUFFER);
        blocked = idle < 0 ? -1 : !idle;
    }
    if (blocked == 0) {
        blocked = transport_none(transport, T_SOCK);
    }
    if (blocked) {
        return blocked;
    }
    int fd = transport_fd(transport);
    if (fd < 0) {
        return -1;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    ssize_t sent = send(fd, PyBytes_AS_STRING(data), (size_t)size, 0);
    int error = errno;
    if (sent == size) {
        return 0;
    }
    PyObject *res;
    if (sent < 0 && error != EAGAIN && error != EWOULDBLOCK && error != EINTR) {
        errno = error;
        PyErr_SetFromErrno(PyExc_OSError);
        res = transport_fail(transport, "socket.send() failed");
    }
    else {
        /* The kernel took part of it, or none: the transport buffers the rest. */
        PyObject *offset = PyLong_FromSsize_t(sent < 0 ? 0 : sent);
        if (offset == NULL) {
            return -1;
        }
        res = PyObject_CallMethodObjArgs(transport, str_buffer_rest, data, offset, NULL);
        Py_DECREF(offset);
    }
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static PyObject *
transport_write(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "write() takes exactly one argument");
        return NULL;
    }
    int slow = transport_write_now(args[0], args[1]);
    if (slow < 0) {
        return NULL;
    }
    if (slow) {
        return PyObject_CallMethodOneArg(args[0], str_write_slow, args[1]);
    }
    Py_RETURN_NONE;
}

/* Module */

static PyMethodDef module_methods[] = {
    {"transport_read_ready", (PyCFunction)transport_read_ready, METH_O,
     "transport_read_ready(transport): the read callback of a SocketTransport."},
    {"use_transport_class", (PyCFunction)use_transport_class, METH_O,
     "use_transport_class(cls): read the slots of cls's instances directly."},
    {"wake", (PyCFunction)(void (*)(void))wake, METH_FASTCALL,
     "wake(waiter, loop, message): resolve a waiting receiver; run its task's step now\n"
     "when nothing else waits on it and no task is running."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tether.asyncio._speedups",
    .m_doc = "C accelerator for the per-message paths of tether.asyncio connections.",
    .m_size = -1,
    .m_methods = module_methods,
};

static PyObject *
import_attr(const char *module, const char *name)
{
    PyObject *mod = PyImport_ImportModule(module);
    if (mod == NULL) {
        return NULL;
    }
    PyObject *attr = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return attr;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } strings[] = {
        {&str_buffer_updated, "buffer_updated"},
        {&str_call_soon, "call_soon"},
        {&str_cancel, "cancel"},
        {&str_close, "close"},
        {&str_data_to_send, "data_to_send"},
        {&str_is_closing, "is_closing"},
        {&str_write, "write"},
        {&str_write_many, "_write_many"},
        {&str_sock, "_sock"},
        {&str_reader_on, "_reader_on"},
        {&str_protocol, "_protocol"},
        {&str_fd, "_fd"},
        {&str_fatal_error, "_fatal_error"},
        {&str_read_eof, "_read_eof"},
        {&str_write_eof, "_write_eof"},
        {&str_closing, "_closing"},
        {&str_buffer, "_buffer"},
        {&str_write_slow, "_write"},
        {&str_buffer_rest, "_buffer_rest"},
        {&str_sink_failed, "_sink_failed"},
        {&str_locked, "locked"},
        {&str_close_transport, "close_transport"},
        {&str_context, "context"},
        {&str_deliver, "_deliver"},
        {&str_done, "done"},
        {&str_events_received, "events_received"},
        {&str_failure_pending, "failure_pending"},
        {&str_flush, "_flush"},
        {&str_get_buffer, "get_buffer"},
        {&str_has_data_to_send, "has_data_to_send"},
        {&str_opening_data, "_opening_data"},
        {&str_partial_frame, "partial_frame"},
        {&str_popleft, "popleft"},
        {&str_receive_data, "receive_data"},
        {&str_requeue, "_requeue"},
        {&str_send, "_send"},
        {&str_send_binary, "send_binary"},
        {&str_send_text, "send_text"},
        {&str_sent, "_sent"},
        {&str_set_result, "set_result"},
        {&str_state, "state"},
        {&str_take, "_take"},
        {&str_wait_drain, "_wait_drain"},
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        *strings[i].slot = PyUnicode_InternFromString(strings[i].text);
        if (*strings[i].slot == NULL) {
            return NULL;
        }
    }
    minus_one = PyLong_FromLong(-1);
    if (minus_one == NULL) {
        return NULL;
    }
    context_kwnames = PyTuple_Pack(1, str_context);
    if (context_kwnames == NULL) {
        return NULL;
    }
    PyObject *state = import_attr("tether.protocol.connection", "State");
    if (state == NULL) {
        return NULL;
    }
    state_open = PyObject_GetAttrString(state, "OPEN");
    Py_DECREF(state);
    current_tasks = import_attr("asyncio.tasks", "_current_tasks");
    cancelled_error = import_attr("asyncio", "CancelledError");
    invalid_state = import_attr("asyncio", "InvalidStateError");
    if (state_open == NULL || current_tasks == NULL || cancelled_error == NULL ||
        invalid_state == NULL) {
        return NULL;
    }
    /* The protocol's accelerator may be turned off (TETHER_NO_SPEEDUPS) or missing: its
     * fields are then read as attributes. */
    PyObject *fastpath = PyImport_ImportModule("tether.protocol.fastpath");
    if (fastpath == NULL) {
        return NULL;
    }
    PyObject *core = PyObject_GetAttrString(fastpath, "ProtocolCore");
    Py_DECREF(fastpath);
    if (core == NULL) {
        return NULL;
    }
    PyObject *c_core = import_attr("tether.protocol._speedups", "ProtocolCore");
    if (c_core == NULL) {
        PyErr_Clear();
    }
    else if (c_core == core) {
        protocol_core_type = (PyTypeObject *)c_core;  /* kept for the module's life */
        protocol_api = (ProtocolCoreAPI *)PyCapsule_Import(PROTOCOL_CORE_CAPSULE, 0);
        if (protocol_api == NULL) {
            return NULL;
        }
    }
    else {
        Py_DECREF(c_core);
    }
    Py_DECREF(core);
    if (!PyDict_Check(current_tasks)) {
        PyErr_SetString(PyExc_ImportError, "asyncio.tasks._current_tasks is not a dict");
        return NULL;
    }
    if (PyType_Ready(&ReceiveType) < 0 || PyType_Ready(&DoneType) < 0 ||
        PyType_Ready(&ConnType) < 0) {
        return NULL;
    }
    /* The one Done object: it has no state, so every fast send returns it. */
    done_singleton = PyObject_New(PyObject, &DoneType);
    if (done_singleton == NULL) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&ConnType);
    Py_INCREF(&ReceiveType);
    Py_INCREF(&DoneType);
    Py_INCREF(done_singleton);
    if (PyModule_AddObject(module, "ConnectionCore", (PyObject *)&ConnType) < 0 ||
        PyModule_AddObject(module, "Receive", (PyObject *)&ReceiveType) < 0 ||
        PyModule_AddObject(module, "Done", (PyObject *)&DoneType) < 0 ||
        PyModule_AddObject(module, "DONE", done_singleton) < 0 ||
        PyModule_AddIntConstant(module, "COALESCE_FRAMES", COALESCE_FRAMES) < 0 ||
        PyModule_AddIntConstant(module, "MAX_READS", MAX_READS) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    /* SocketTransport.write and is_closing: functions that bind as methods when set on
     * the class. */
    static PyMethodDef method_defs[] = {
        {"write", (PyCFunction)(void (*)(void))transport_write, METH_FASTCALL,
         "Write data: at once while nothing is buffered, else after what is."},
        {"is_closing", (PyCFunction)transport_is_closing, METH_O,
         "Tell whether the transport is closing or closed."},
    };
    const char *names[] = {"transport_write", "transport_is_closing"};
    for (int i = 0; i < 2; i++) {
        PyObject *func = PyCFunction_NewEx(&method_defs[i], NULL, module);
        PyObject *method = func == NULL ? NULL : PyInstanceMethod_New(func);
        Py_XDECREF(func);
        if (method == NULL || PyModule_AddObjectRef(module, names[i], method) < 0) {
            Py_XDECREF(method);
            Py_DECREF(module);
            return NULL;
        }
        *(i == 0 ? &write_method : &is_closing_method) = method;  /* kept for good */
    }
    return module;
}
