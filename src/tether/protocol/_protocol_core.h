/* The fields of tether.protocol._speedups.ProtocolCore, the base class of
 * tether.protocol.connection.Protocol (see fastpath.PyProtocolCore for what each holds).
 * Shared with tether/asyncio/_speedups.c, which reads them directly from connections
 * whose protocol is an instance of this type; both extensions are built from this
 * header together. */

#ifndef TETHER_PROTOCOL_CORE_H
#define TETHER_PROTOCOL_CORE_H

#include <Python.h>

/* Every field holds a Python object (bools as True/False, numbers as ints), so that the
 * Python code of the protocol reads and writes them as fast as its own slots: the
 * interpreter specializes attribute access to object slots only. */
typedef struct {
    PyObject_HEAD
    PyObject *events;            /* list of events parsed since events_received() */
    PyObject *out;               /* list of bytes to write, in order */
    PyObject *probe;             /* UTF-8 decoder checking a partial text frame, or None */
    PyObject *state;             /* a State member */
    PyObject *msg_opcode;        /* opcode of the fragmented message in progress, or -1 */
    PyObject *partial_checked;   /* bytes of the partial frame already UTF-8 checked */
    PyObject *data_limit;        /* largest data frame payload accepted here, -1: none */
    PyObject *server;            /* the server side: frames arrive masked */
    PyObject *fast_send;         /* a final frame may be queued without further checks */
    PyObject *discard;           /* input is discarded: the connection failed */
    PyObject *partial_frame;     /* a frame is partly received */
    PyObject *failure_pending;   /* a failure waits for earlier messages to be consumed */
    PyObject *close_transport;   /* the TCP connection should be closed */
} ProtocolCoreObject;

/* The truth of a field; -1 with an exception set. */
static inline int
core_flag(PyObject *value)
{
    if (value == Py_True) {
        return 1;
    }
    if (value == Py_False || value == Py_None || value == NULL) {
        return 0;
    }
    return PyObject_IsTrue(value);
}

/* A numeric field; -1 with an exception set (check PyErr_Occurred). */
static inline Py_ssize_t
core_size(PyObject *value)
{
    return value == NULL ? 0 : PyLong_AsSsize_t(value);
}

/* C functions of tether.protocol._speedups for the asyncio accelerator, found through
 * the capsule tether.protocol._speedups._C_API. */
typedef struct {
    /* ProtocolCore.receive_data(mv[:n]) for a C-contiguous memoryview mv and
     * 0 <= n <= len(mv); -1 with an exception set. */
    int (*receive_prefix)(ProtocolCoreObject *self, PyObject *mv, Py_ssize_t n);
    /* ProtocolCore.send_binary(data) (text: send_text); -1 with an exception set. */
    int (*send_message)(ProtocolCoreObject *self, PyObject *data, int text);
} ProtocolCoreAPI;

#define PROTOCOL_CORE_CAPSULE "tether.protocol._speedups._C_API"

#endif
