/* Optional accelerator: payload masking, the common-case frame parser and the plain
 * upgrade request scan for tether.protocol, and the common-case REPE header check for
 * tether.rpc.repe. The pure-Python fallbacks in masking.py, fastpath.py, handshake.py
 * and repe.py give identical results (tests check both). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* XOR n bytes of in with the 4-byte key m, starting at key position offset % 4.
 * Where the compiler and the C library can pick a version per CPU at load time, an AVX2
 * build of the same loop (wider vectors) is used on CPUs that have it. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("avx2", "default")))
#endif
static void
xor_mask(const unsigned char *in, unsigned char *out, Py_ssize_t n,
         const unsigned char *m, Py_ssize_t offset)
{
    unsigned char key[8];
    for (int k = 0; k < 8; k++) {
        key[k] = m[(offset + k) & 3];
    }
    uint64_t key64;
    memcpy(&key64, key, 8);
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t chunk;
        memcpy(&chunk, in + i, 8);
        chunk ^= key64;
        memcpy(out + i, &chunk, 8);
    }
    for (; i < n; i++) {
        out[i] = in[i] ^ key[i & 3];
    }
}

/* XOR n bytes from in to out with the mask at key position offset, without the GIL when
 * the run is long enough for that to pay. */
static void
xor_mask_long(const unsigned char *in, unsigned char *out, Py_ssize_t n,
              const unsigned char *m, Py_ssize_t offset)
{
    if (n >= 65536) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(in, out, n, m, offset);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask(in, out, n, m, offset);
    }
}

static PyObject *
apply_mask(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "mask", "offset", NULL};
    Py_buffer data, mask;
    Py_ssize_t offset = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*|n", kwlist, &data, &mask, &offset)) {
        return NULL;
    }
    PyObject *result = NULL;
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        goto done;
    }
    if (offset < 0) {
        PyErr_SetString(PyExc_ValueError, "offset must be non-negative");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }
    const unsigned char *in = (const unsigned char *)data.buf;
    const unsigned char *m = (const unsigned char *)mask.buf;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    xor_mask_long(in, out, data.len, m, offset);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;
}


/* Parse the common case in one pass: complete, final, uncompressed text and binary frames.
 *
 * parse_messages(data, pos, end, masked, limit, events) -> new_pos
 *
 * Appends bytes (binary) or str (text) to the list events for every such frame starting at
 * pos, and stops at the first frame it does not handle: an incomplete one, a control or
 * fragmented frame, RSV bits, a wrong mask bit, a payload over limit (limit < 0: none), or
 * text that is not valid UTF-8. The caller's Python parser handles that frame, including
 * every error, so both paths give identical results. */
static PyObject *
parse_messages(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, end, limit;
    int masked;
    PyObject *events;
    if (!PyArg_ParseTuple(args, "y*nnpnO!", &view, &pos, &end, &masked, &limit,
                          &PyList_Type, &events)) {
        return NULL;
    }
    const unsigned char *buf = (const unsigned char *)view.buf;
    if (end > view.len) {
        end = view.len;
    }
    while (end - pos >= 2) {
        unsigned char b0 = buf[pos], b1 = buf[pos + 1];
        if (b0 != 0x81 && b0 != 0x82) {
            break;
        }
        if (((b1 & 0x80) != 0) != (masked != 0)) {
            break;
        }
        uint64_t length = b1 & 0x7F;
        Py_ssize_t hlen = 2;
        if (length == 126) {
            if (end - pos < 4) {
                break;
            }
            length = ((uint64_t)buf[pos + 2] << 8) | buf[pos + 3];
            hlen = 4;
        }
        else if (length == 127) {
            if (end - pos < 10) {
                break;
            }
            length = 0;
            for (int k = 0; k < 8; k++) {
                length = (length << 8) | buf[pos + 2 + k];
            }
            hlen = 10;
        }
        if (masked) {
            hlen += 4;
        }
        if (limit >= 0 && length > (uint64_t)limit) {
            break;
        }
        if (end - pos < hlen || (uint64_t)(end - pos - hlen) < length) {
            break;
        }
        Py_ssize_t n = (Py_ssize_t)length;
        const unsigned char *src = buf + pos + hlen;
        PyObject *item;
        if (b0 == 0x82) {
            item = PyBytes_FromStringAndSize(NULL, n);
            if (item == NULL) {
                goto error;
            }
            unsigned char *out = (unsigned char *)PyBytes_AS_STRING(item);
            if (masked) {
                const unsigned char *m = src - 4;
                xor_mask(src, out, n, m, 0);
            }
            else {
                memcpy(out, src, n);
            }
        }
        else {
            if (masked) {
                PyObject *raw = PyBytes_FromStringAndSize(NULL, n);
                if (raw == NULL) {
                    goto error;
                }
                xor_mask(src, (unsigned char *)PyBytes_AS_STRING(raw), n, src - 4, 0);
                item = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw), n, "strict");
                Py_DECREF(raw);
            }
            else {
                item = PyUnicode_DecodeUTF8((const char *)src, n, "strict");
            }
            if (item == NULL) {
                if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    /* Leave the frame to the Python parser, which fails with 1007. */
                    PyErr_Clear();
                    break;
                }
                goto error;
            }
        }
        if (PyList_Append(events, item) < 0) {
            Py_DECREF(item);
            goto error;
        }
        Py_DECREF(item);
        pos += hlen + n;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(pos);
error:
    PyBuffer_Release(&view);
    return NULL;
}

/* Payload(size): a binary message's payload, filled in place as its frame arrives and then
 * handed out as the very bytes object it was written into. A large frame is read by the
 * socket straight into the message the application receives, and unmasked there while the
 * bytes are still in cache, instead of being copied out of a read buffer. The object
 * exports a writable buffer over the bytes until take(); the bytes stay referenced by the
 * object until it is freed, so a view that outlives take() never dangles. */
typedef struct {
    PyObject_HEAD
    PyObject *data;
    int taken;
} PayloadObject;

static PyObject *
payload_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"size", NULL};
    Py_ssize_t size;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n", kwlist, &size)) {
        return NULL;
    }
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "size must be non-negative");
        return NULL;
    }
    PayloadObject *self = (PayloadObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->data = PyBytes_FromStringAndSize(NULL, size);
    if (self->data == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
payload_dealloc(PayloadObject *self)
{
    Py_XDECREF(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
payload_check(PayloadObject *self, Py_ssize_t start, Py_ssize_t n)
{
    if (self->taken) {
        PyErr_SetString(PyExc_ValueError, "payload already taken");
        return -1;
    }
    if (start < 0 || n < 0 || start > PyBytes_GET_SIZE(self->data) - n) {
        PyErr_SetString(PyExc_ValueError, "range outside the payload");
        return -1;
    }
    return 0;
}

static int
payload_getbuffer(PayloadObject *self, Py_buffer *view, int flags)
{
    if (self->taken) {
        PyErr_SetString(PyExc_BufferError, "payload already taken");
        view->obj = NULL;
        return -1;
    }
    return PyBuffer_FillInfo(view, (PyObject *)self, PyBytes_AS_STRING(self->data),
                             PyBytes_GET_SIZE(self->data), 0, flags);
}

/* A 4-byte mask from a buffer, or NULL for None; -1 on error. */
static int
get_mask(PyObject *obj, Py_buffer *mask)
{
    if (obj == Py_None) {
        return 0;
    }
    if (PyObject_GetBuffer(obj, mask, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (mask->len != 4) {
        PyBuffer_Release(mask);
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        return -1;
    }
    return 1;
}

static PyObject *
payload_fill(PayloadObject *self, PyObject *args)
{
    Py_ssize_t pos;
    Py_buffer src, mask;
    PyObject *mask_obj = Py_None;
    if (!PyArg_ParseTuple(args, "ny*|O", &pos, &src, &mask_obj)) {
        return NULL;
    }
    PyObject *result = NULL;
    int has_mask = get_mask(mask_obj, &mask);
    if (has_mask < 0 || payload_check(self, pos, src.len) < 0) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(self->data) + pos;
    if (has_mask) {
        xor_mask_long((const unsigned char *)src.buf, out, src.len,
                      (const unsigned char *)mask.buf, pos);
    }
    else {
        memcpy(out, src.buf, src.len);
    }
    result = Py_NewRef(Py_None);
done:
    if (has_mask > 0) {
        PyBuffer_Release(&mask);
    }
    PyBuffer_Release(&src);
    return result;
}

static PyObject *
payload_unmask(PayloadObject *self, PyObject *args)
{
    Py_ssize_t start, end;
    Py_buffer mask;
    if (!PyArg_ParseTuple(args, "nny*", &start, &end, &mask)) {
        return NULL;
    }
    PyObject *result = NULL;
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
    }
    else if (payload_check(self, start, end - start) == 0) {
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(self->data) + start;
        xor_mask_long(p, p, end - start, (const unsigned char *)mask.buf, start);
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&mask);
    return result;
}

static PyObject *
payload_view(PayloadObject *self, PyObject *unused)
{
    return PyMemoryView_FromObject((PyObject *)self);
}

static PyObject *
payload_take(PayloadObject *self, PyObject *unused)
{
    if (self->taken) {
        PyErr_SetString(PyExc_ValueError, "payload already taken");
        return NULL;
    }
    self->taken = 1;
    return Py_NewRef(self->data);
}

static PyObject *
payload_size(PayloadObject *self, void *closure)
{
    return PyLong_FromSsize_t(PyBytes_GET_SIZE(self->data));
}

static PyMethodDef payload_methods[] = {
    {"fill", (PyCFunction)payload_fill, METH_VARARGS,
     "fill(pos, src, mask=None)\n\n"
     "Write src at pos, XORed with the mask at key position pos unless mask is None."},
    {"unmask", (PyCFunction)payload_unmask, METH_VARARGS,
     "unmask(start, end, mask)\n\nXOR payload[start:end] in place, key position start."},
    {"view", (PyCFunction)payload_view, METH_NOARGS,
     "view() -> memoryview\n\nA writable view of the whole payload."},
    {"take", (PyCFunction)payload_take, METH_NOARGS,
     "take() -> bytes\n\nThe payload as bytes; the object cannot be written any more."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef payload_getset[] = {
    {"size", (getter)payload_size, NULL, "Length of the payload in bytes.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyBufferProcs payload_as_buffer = {
    .bf_getbuffer = (getbufferproc)payload_getbuffer,
};

static PyTypeObject PayloadType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tether.protocol._speedups.Payload",
    .tp_basicsize = sizeof(PayloadObject),
    .tp_dealloc = (destructor)payload_dealloc,
    .tp_as_buffer = &payload_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Payload(size): a message payload filled in place, then taken as bytes.",
    .tp_methods = payload_methods,
    .tp_getset = payload_getset,
    .tp_new = payload_new,
};

static uint64_t
le_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) {
        v = (v << 8) | p[k];
    }
    return v;
}

static uint32_t
le_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static unsigned int
le_u16(const unsigned char *p)
{
    return (unsigned int)p[0] | ((unsigned int)p[1] << 8);
}

/* The REPE message class, set once by repe_setup(), and the offsets of its nine slots in
 * header order. repe_decode() allocates an instance and stores the fields into the slots
 * directly, as object.__setattr__ would: the frozen class's __setattr__ and __init__ are
 * bypassed, and the values are already range-checked by the header parse. */
#include <structmember.h>

static PyTypeObject *repe_message_type = NULL;
static Py_ssize_t repe_offsets[9];

static PyObject *
repe_setup(PyObject *self, PyObject *args)
{
    PyObject *message, *names;
    if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &message, &PyTuple_Type, &names)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(names) != 9) {
        PyErr_SetString(PyExc_ValueError, "nine field names expected");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)message;
    Py_ssize_t offsets[9];
    for (int k = 0; k < 9; k++) {
        PyObject *descr = PyObject_GetAttr(message, PyTuple_GET_ITEM(names, k));
        if (descr == NULL) {
            return NULL;
        }
        int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type)
                 && ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX
                 && !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY);
        if (ok) {
            offsets[k] = ((PyMemberDescrObject *)descr)->d_member->offset;
        }
        Py_DECREF(descr);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%R is not a writable object slot",
                         PyTuple_GET_ITEM(names, k));
            return NULL;
        }
    }
    memcpy(repe_offsets, offsets, sizeof(offsets));
    Py_INCREF(message);
    Py_XSETREF(repe_message_type, type);
    Py_RETURN_NONE;
}

/* The checks and the Message of repe_decode(); None when the common case does not apply. */
static PyObject *
repe_fast(long long max_size, long long copy_limit, PyObject *data)
{
    if (repe_message_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "repe_setup() was not called");
        return NULL;
    }
    if (!PyBytes_CheckExact(data)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (size < 48) {
        Py_RETURN_NONE;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
    uint64_t length = le_u64(p);
    unsigned int spec = le_u16(p + 8);
    unsigned int version = p[10];
    int notify = p[11] != 0;
    uint32_t reserved = le_u32(p + 12);
    uint64_t id = le_u64(p + 16);
    uint64_t query_length = le_u64(p + 24);
    uint64_t body_length = le_u64(p + 32);
    unsigned int query_format = le_u16(p + 40);
    unsigned int body_format = le_u16(p + 42);
    uint32_t ec = le_u32(p + 44);
    if (spec != 0x1507 || version != 1) {
        Py_RETURN_NONE;
    }
    if (max_size >= 0 && length > (uint64_t)max_size) {
        Py_RETURN_NONE;
    }
    /* 48 + query_length + body_length must not overflow and must equal length. */
    if (query_length > UINT64_MAX - 48 || body_length > UINT64_MAX - 48 - query_length) {
        Py_RETURN_NONE;
    }
    if (length != 48 + query_length + body_length || length != (uint64_t)size) {
        Py_RETURN_NONE;
    }
    if (copy_limit < 0 || body_length > (uint64_t)copy_limit) {
        Py_RETURN_NONE;
    }
    PyObject *values[9] = {NULL};
    values[0] = PyLong_FromUnsignedLongLong(id);
    values[1] = PyBytes_FromStringAndSize((const char *)p + 48, (Py_ssize_t)query_length);
    values[2] = PyBytes_FromStringAndSize((const char *)p + 48 + query_length,
                                          (Py_ssize_t)body_length);
    values[3] = PyLong_FromUnsignedLong(query_format);
    values[4] = PyLong_FromUnsignedLong(body_format);
    values[5] = PyLong_FromUnsignedLong((unsigned long)ec);
    values[6] = Py_NewRef(notify ? Py_True : Py_False);
    values[7] = PyLong_FromUnsignedLong(version);
    values[8] = PyLong_FromUnsignedLong((unsigned long)reserved);
    PyObject *message = NULL;
    for (int k = 0; k < 9; k++) {
        if (values[k] == NULL) {
            goto done;
        }
    }
    message = repe_message_type->tp_alloc(repe_message_type, 0);
    if (message == NULL) {
        goto done;
    }
    for (int k = 0; k < 9; k++) {
        /* The slot takes over the reference. */
        *(PyObject **)((char *)message + repe_offsets[k]) = values[k];
        values[k] = NULL;
    }
done:
    for (int k = 0; k < 9; k++) {
        Py_XDECREF(values[k]);
    }
    return message;
}

/* repe_decode(max_size, copy_limit, [fallback,] data): a valid REPE v1 message held in a
 * bytes object, as a message of the type given to repe_setup(), with query and body copied
 * out as bytes. Anything else (not bytes, any failed check, another version, a body above
 * copy_limit) gives None, or fallback(data) when a fallback is given: the caller's slow
 * way, which raises or reports the right error. max_size < 0 means no limit. The data
 * comes last so that functools.partial can bind the rest. */
static PyObject *
repe_decode(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 && nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "repe_decode() takes 3 or 4 arguments");
        return NULL;
    }
    long long max_size = PyLong_AsLongLong(args[0]);
    if (max_size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    long long copy_limit = PyLong_AsLongLong(args[1]);
    if (copy_limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *fallback = nargs == 4 ? args[2] : NULL;
    PyObject *data = args[nargs - 1];
    PyObject *message = repe_fast(max_size, copy_limit, data);
    if (message != Py_None || fallback == NULL) {
        return message;
    }
    Py_DECREF(message);
    return PyObject_CallOneArg(fallback, data);
}

/* RFC 7230 3.2.6 tchar. */
static int
is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return 1;
    }
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* scan_head(head) -> (target, fields) | None: see handshake.py's _py_scan_head. */
static PyObject *
scan_head(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "scan_head() takes bytes");
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t n = PyBytes_GET_SIZE(arg);
    Py_ssize_t i = 4;
    if (n < 4 || memcmp(p, "GET ", 4) != 0) {
        Py_RETURN_NONE;
    }
    Py_ssize_t target_start = i;
    while (i < n && p[i] >= 0x21 && p[i] <= 0x7e) {
        i++;
    }
    Py_ssize_t target_end = i;
    if (target_end == target_start || n - i < 11 || memcmp(p + i, " HTTP/1.1\r\n", 11) != 0) {
        Py_RETURN_NONE;
    }
    i += 11;
    PyObject *fields = PyDict_New();
    if (fields == NULL) {
        return NULL;
    }
    for (;;) {
        if (n - i == 2 && p[i] == '\r' && p[i + 1] == '\n') {
            break; /* the empty line ends the head, and the bytes */
        }
        Py_ssize_t name_start = i;
        while (i < n && is_tchar(p[i])) {
            i++;
        }
        Py_ssize_t name_len = i - name_start;
        if (name_len == 0 || i >= n || p[i] != ':') {
            goto decline;
        }
        i++;
        Py_ssize_t value_start = i;
        while (i < n && (p[i] == '\t' || (p[i] >= 0x20 && p[i] <= 0x7e))) {
            i++;
        }
        Py_ssize_t value_end = i;
        if (n - i < 2 || p[i] != '\r' || p[i + 1] != '\n') {
            goto decline;
        }
        i += 2;
        while (value_start < value_end && (p[value_start] == ' ' || p[value_start] == '\t')) {
            value_start++;
        }
        while (value_end > value_start && (p[value_end - 1] == ' ' || p[value_end - 1] == '\t')) {
            value_end--;
        }
        PyObject *key = PyBytes_FromStringAndSize(NULL, name_len);
        if (key == NULL) {
            goto error;
        }
        unsigned char *lower = (unsigned char *)PyBytes_AS_STRING(key);
        for (Py_ssize_t k = 0; k < name_len; k++) {
            unsigned char c = p[name_start + k];
            lower[k] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
        }
        int present = PyDict_Contains(fields, key);
        if (present != 0) {
            Py_DECREF(key);
            if (present < 0) {
                goto error;
            }
            goto decline; /* a repeated field */
        }
        PyObject *value = PyBytes_FromStringAndSize(
            (const char *)p + value_start, value_end - value_start);
        if (value == NULL || PyDict_SetItem(fields, key, value) < 0) {
            Py_DECREF(key);
            Py_XDECREF(value);
            goto error;
        }
        Py_DECREF(key);
        Py_DECREF(value);
    }
    PyObject *target = PyBytes_FromStringAndSize(
        (const char *)p + target_start, target_end - target_start);
    if (target == NULL) {
        goto error;
    }
    PyObject *result = PyTuple_Pack(2, target, fields);
    Py_DECREF(target);
    Py_DECREF(fields);
    return result;
decline:
    Py_DECREF(fields);
    Py_RETURN_NONE;
error:
    Py_DECREF(fields);
    return NULL;
}

static PyMethodDef speedups_methods[] = {
    {"scan_head", scan_head, METH_O,
     "scan_head(head) -> (target, fields) | None\n\n"
     "Split a GET HTTP/1.1 request head of visible ASCII into its target and its fields\n"
     "(lowercase name to value without surrounding whitespace); None if it is not one\n"
     "or repeats a field name."},
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_VARARGS | METH_KEYWORDS,
     "apply_mask(data, mask, offset=0) -> bytes\n\n"
     "XOR data with the 4-byte mask, starting at mask position offset % 4."},
    {"parse_messages", parse_messages, METH_VARARGS,
     "parse_messages(data, pos, end, masked, limit, events) -> int\n\n"
     "Append complete unfragmented text/binary messages to events; return the new position."},
    {"repe_setup", repe_setup, METH_VARARGS,
     "repe_setup(message_type, names) -> None\n\n"
     "Set the class and slot names repe_decode builds messages with."},
    {"repe_decode", (PyCFunction)(void (*)(void))repe_decode, METH_FASTCALL,
     "repe_decode(max_size, copy_limit, [fallback,] data) -> message | None\n\n"
     "A valid REPE v1 message in a bytes object, or None (fallback(data) if given)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "tether.protocol._speedups", NULL, -1, speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&PayloadType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Payload", (PyObject *)&PayloadType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
