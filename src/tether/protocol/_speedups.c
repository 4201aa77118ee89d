/* Optional accelerator: payload masking, the common-case frame parser, the protocol's
 * per-message methods (ProtocolCore) and the plain upgrade request scan for
 * tether.protocol, and the common-case REPE header check for tether.rpc.repe. The
 * pure-Python fallbacks in masking.py, fastpath.py, handshake.py and repe.py give
 * identical results (tests check both). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#include "_protocol_core.h"

/* XOR n bytes of in with the 4-byte key m, starting at key position offset % 4, eight
 * bytes at a time; in and out are the same buffer or do not overlap. */
static void
xor_mask_portable(const unsigned char *in, unsigned char *out, Py_ssize_t n,
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

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define XOR_MASK_X86 1

/* The four key bytes in the order they apply from key position offset, as one word. */
static inline int32_t
key_word(const unsigned char *m, Py_ssize_t offset)
{
    unsigned char key[4] = {m[offset & 3], m[(offset + 1) & 3], m[(offset + 2) & 3],
                            m[(offset + 3) & 3]};
    int32_t word;
    memcpy(&word, key, 4);
    return word;
}

/* The same with 16-byte vectors (SSE2: every x86-64 CPU has it). Written with vector
 * types rather than left to the compiler: its vectorized loop checks that in and out do
 * not overlap and runs the scalar loop when they are the same buffer, which is how a
 * large payload is unmasked. */
static void
xor_mask_sse2(const unsigned char *in, unsigned char *out, Py_ssize_t n,
              const unsigned char *m, Py_ssize_t offset)
{
    __m128i k128 = _mm_set1_epi32(key_word(m, offset));
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i chunk = _mm_loadu_si128((const __m128i *)(in + i));
        _mm_storeu_si128((__m128i *)(out + i), _mm_xor_si128(chunk, k128));
    }
    /* i is a multiple of 16, so the key position is still offset. */
    xor_mask_portable(in + i, out + i, n - i, m, offset);
}

/* With 32-byte vectors, two per iteration, on CPUs that have AVX2. */
__attribute__((target("avx2"))) static void
xor_mask_avx2(const unsigned char *in, unsigned char *out, Py_ssize_t n,
              const unsigned char *m, Py_ssize_t offset)
{
    __m256i k256 = _mm256_set1_epi32(key_word(m, offset));
    Py_ssize_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(in + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(in + i + 32));
        _mm256_storeu_si256((__m256i *)(out + i), _mm256_xor_si256(a, k256));
        _mm256_storeu_si256((__m256i *)(out + i + 32), _mm256_xor_si256(b, k256));
    }
    /* Under 64 bytes left, at key position offset again: the 16-byte loop takes them. */
    xor_mask_sse2(in + i, out + i, n - i, m, offset);
}

#endif

/* The unmasking loop in use: the widest this CPU runs, picked when the module loads. */
static void (*xor_mask)(const unsigned char *, unsigned char *, Py_ssize_t,
                        const unsigned char *, Py_ssize_t) = xor_mask_portable;
static const char *xor_mask_name = "portable";

/* Use the loop called name; 0 if this build or CPU has none of that name. */
static int
use_xor_mask(const char *name)
{
    if (strcmp(name, "portable") == 0) {
        xor_mask = xor_mask_portable;
        xor_mask_name = "portable";
        return 1;
    }
#ifdef XOR_MASK_X86
    if (strcmp(name, "sse2") == 0) {
        xor_mask = xor_mask_sse2;
        xor_mask_name = "sse2";
        return 1;
    }
    if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
        xor_mask = xor_mask_avx2;
        xor_mask_name = "avx2";
        return 1;
    }
#endif
    return 0;
}

static void
pick_xor_mask(void)
{
#ifdef XOR_MASK_X86
    __builtin_cpu_init();
    if (!use_xor_mask("avx2")) {
        use_xor_mask("sse2");
    }
#endif
}

/* _set_masking(name) -> the previous name: every loop this machine runs can be tested
 * against the pure-Python masking. */
static PyObject *
set_masking(PyObject *self, PyObject *arg)
{
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "the name of a masking loop is required");
        return NULL;
    }
    const char *previous = xor_mask_name;
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL) {
        return NULL;
    }
    if (use_xor_mask(name)) {
        return PyUnicode_FromString(previous);
    }
    PyErr_Format(PyExc_ValueError, "no masking loop %R on this machine", arg);
    return NULL;
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


/* Write a frame header for first byte `first` and an n-byte payload into out (room for 10
 * bytes), with the mask bit when `masked` (the key itself is the caller's); return its
 * length. */
static Py_ssize_t
write_header(unsigned char *out, int first, Py_ssize_t n, int masked)
{
    unsigned char mask_bit = masked ? 0x80 : 0;
    out[0] = (unsigned char)first;
    if (n < 126) {
        out[1] = (unsigned char)(mask_bit | n);
        return 2;
    }
    if (n < 65536) {
        out[1] = mask_bit | 126;
        out[2] = (unsigned char)(n >> 8);
        out[3] = (unsigned char)n;
        return 4;
    }
    out[1] = mask_bit | 127;
    uint64_t length = (uint64_t)n;
    for (int k = 0; k < 8; k++) {
        out[9 - k] = (unsigned char)(length >> (8 * k));
    }
    return 10;
}


/* masked_frame(first_byte, payload, mask) -> bytes: a whole client frame (header, masking
 * key, masked payload) in one new object, for payloads the caller joins to their header. */
static PyObject *
masked_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "masked_frame() takes exactly 3 arguments");
        return NULL;
    }
    long first = PyLong_AsLong(args[0]);
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (first < 0 || first > 255) {
        PyErr_SetString(PyExc_ValueError, "first_byte must be in range(256)");
        return NULL;
    }
    Py_buffer data, mask;
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    PyObject *result = NULL;
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        goto done;
    }
    Py_ssize_t n = data.len;
    unsigned char header[10];
    Py_ssize_t head = write_header(header, (int)first, n, 1);
    result = PyBytes_FromStringAndSize(NULL, head + 4 + n);
    if (result == NULL) {
        goto done;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    memcpy(out, header, head);
    memcpy(out + head, mask.buf, 4);
    xor_mask_long((const unsigned char *)data.buf, out + head + 4, n,
                  (const unsigned char *)mask.buf, 0);
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
static Py_ssize_t
parse_into(const unsigned char *buf, Py_ssize_t len, Py_ssize_t pos, Py_ssize_t end,
           int masked, Py_ssize_t limit, PyObject *events)
{
    if (end > len) {
        end = len;
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
                return -1;
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
                    return -1;
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
                return -1;
            }
        }
        if (PyList_Append(events, item) < 0) {
            Py_DECREF(item);
            return -1;
        }
        Py_DECREF(item);
        pos += hlen + n;
    }
    return pos;
}

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
    Py_ssize_t done = parse_into((const unsigned char *)view.buf, view.len, pos, end, masked,
                                 limit, events);
    PyBuffer_Release(&view);
    return done < 0 ? NULL : PyLong_FromSsize_t(done);
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

/* A REPE header's fields, as repe_header() read them. */
typedef struct {
    uint64_t id, query_length, body_length;
    unsigned int query_format, body_format, version;
    uint32_t ec, reserved;
    int notify;
} RepeHeader;

/* Read and check the header of a REPE v1 message held whole in p[0:size]: 1 when it is
 * one (magic, version 1, at most max_size bytes unless max_size < 0, lengths adding up to
 * size), else 0. */
static int
repe_header(const unsigned char *p, Py_ssize_t size, long long max_size, RepeHeader *h)
{
    if (size < 48) {
        return 0;
    }
    uint64_t length = le_u64(p);
    h->version = p[10];
    h->notify = p[11] != 0;
    h->reserved = le_u32(p + 12);
    h->id = le_u64(p + 16);
    h->query_length = le_u64(p + 24);
    h->body_length = le_u64(p + 32);
    h->query_format = le_u16(p + 40);
    h->body_format = le_u16(p + 42);
    h->ec = le_u32(p + 44);
    if (le_u16(p + 8) != 0x1507 || h->version != 1) {
        return 0;
    }
    if (max_size >= 0 && length > (uint64_t)max_size) {
        return 0;
    }
    /* 48 + query_length + body_length must not overflow and must equal length. */
    if (h->query_length > UINT64_MAX - 48 || h->body_length > UINT64_MAX - 48 - h->query_length) {
        return 0;
    }
    return length == 48 + h->query_length + h->body_length && length == (uint64_t)size;
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
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
    RepeHeader h;
    if (!repe_header(p, PyBytes_GET_SIZE(data), max_size, &h)) {
        Py_RETURN_NONE;
    }
    if (copy_limit < 0 || h.body_length > (uint64_t)copy_limit) {
        Py_RETURN_NONE;
    }
    PyObject *values[9] = {NULL};
    values[0] = PyLong_FromUnsignedLongLong(h.id);
    values[1] = PyBytes_FromStringAndSize((const char *)p + 48, (Py_ssize_t)h.query_length);
    values[2] = PyBytes_FromStringAndSize((const char *)p + 48 + h.query_length,
                                          (Py_ssize_t)h.body_length);
    values[3] = PyLong_FromUnsignedLong(h.query_format);
    values[4] = PyLong_FromUnsignedLong(h.body_format);
    values[5] = PyLong_FromUnsignedLong((unsigned long)h.ec);
    values[6] = Py_NewRef(h.notify ? Py_True : Py_False);
    values[7] = PyLong_FromUnsignedLong(h.version);
    values[8] = PyLong_FromUnsignedLong((unsigned long)h.reserved);
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

/* repe_encode_response(id, body, body_format, ec) -> bytes: a response in Glaze's shape
 * (empty raw query), header and body in one object; rpc.repe.encode_response in C. A
 * field out of range raises struct.error, as the Python version's struct.pack does. */
static PyObject *struct_error;

static void
put_le(unsigned char *p, uint64_t value, int n)
{
    for (int k = 0; k < n; k++) {
        p[k] = (unsigned char)(value >> (8 * k));
    }
}

static int
field(PyObject *obj, uint64_t max, uint64_t *out)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(struct_error, "required argument is not an integer");
        return -1;
    }
    uint64_t value = PyLong_AsUnsignedLongLong(obj);
    int outside = 0;  /* negative, or beyond 64 bits */
    if (value == (uint64_t)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return -1;
        }
        PyErr_Clear();
        outside = 1;
    }
    if (outside || value > max) {
        PyErr_SetString(struct_error, "argument out of range");
        return -1;
    }
    *out = value;
    return 0;
}

/* A response in Glaze's shape whose body is the buffer of body_obj. */
static PyObject *
response_from(uint64_t id, PyObject *body_obj, uint64_t body_format, uint64_t ec)
{
    Py_buffer body;
    if (PyObject_GetBuffer(body_obj, &body, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, 48 + body.len);
    if (out != NULL) {
        unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
        memset(p, 0, 48);
        put_le(p, (uint64_t)(48 + body.len), 8);  /* length */
        put_le(p + 8, 0x1507, 2);                  /* spec */
        p[10] = 1;                                  /* version */
        put_le(p + 16, id, 8);
        put_le(p + 32, (uint64_t)body.len, 8);     /* body_length */
        put_le(p + 42, body_format, 2);
        put_le(p + 44, ec, 4);
        memcpy(p + 48, body.buf, body.len);
    }
    PyBuffer_Release(&body);
    return out;
}

static PyObject *
repe_encode_response(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 3 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "encode_response() takes 3 or 4 arguments");
        return NULL;
    }
    uint64_t id, body_format, ec = 0;
    if (field(args[0], UINT64_MAX, &id) < 0 || field(args[2], 0xFFFF, &body_format) < 0 ||
        (nargs == 4 && field(args[3], 0xFFFFFFFFu, &ec) < 0)) {
        return NULL;
    }
    return response_from(id, args[1], body_format, ec);
}

/* PlainCalls(max_size, routes, codec): the server's path for a plain JSON call, one C
 * call per request; rpc.repe.py_plain_call is the same in Python. Called with a request
 * (bytes) it returns
 *   - None when the request is not a plain call: not a bytes object holding one valid
 *     REPE v1 message of at most max_size bytes (max_size < 0: no limit), a notify, an
 *     ec, a query format other than JSON pointer (1), a body format other than JSON (2),
 *     a path not in routes (bytes -> handler), a codec that is not [loads, dumps], or a
 *     body that loads() refuses with an Exception. Nothing was called but loads.
 *   - bytes: the response (ec 0, JSON body dumps(handler(loads(body))), Glaze's shape),
 *     when the handler returned a value of a plain type (None, bool, int, float, str,
 *     list, dict, tuple, bytes, exactly) that dumps() encoded;
 *   - (result, None) when the handler returned anything else or dumps() raised an
 *     Exception, (None, exc) when the handler raised the Exception exc: the caller
 *     finishes the request. routes and codec are read at every call. */
typedef struct {
    PyObject_HEAD
    long long max_size;
    PyObject *routes;
    PyObject *codec;
    vectorcallfunc vectorcall;
} PlainCallsObject;

static PyObject *plain_vectorcall(PlainCallsObject *self, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames);

static PyObject *
plain_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    long long max_size;
    PyObject *routes, *codec;
    if (!PyArg_ParseTuple(args, "LO!O!", &max_size, &PyDict_Type, &routes, &PyList_Type,
                          &codec)) {
        return NULL;
    }
    PlainCallsObject *self = (PlainCallsObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->max_size = max_size;
    self->routes = Py_NewRef(routes);
    self->codec = Py_NewRef(codec);
    self->vectorcall = (vectorcallfunc)plain_vectorcall;
    return (PyObject *)self;
}

static int
plain_traverse(PlainCallsObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->routes);
    Py_VISIT(self->codec);
    return 0;
}

static int
plain_clear(PlainCallsObject *self)
{
    Py_CLEAR(self->routes);
    Py_CLEAR(self->codec);
    return 0;
}

static void
plain_dealloc(PlainCallsObject *self)
{
    PyObject_GC_UnTrack(self);
    plain_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The pending Exception as (first, second) = (None, exc) or (result, None); NULL, with the
 * error still set, when it is not an Exception (KeyboardInterrupt and the like). */
static PyObject *
plain_outcome(PyObject *result)
{
    if (result == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL;
        }
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        if (traceback != NULL) {
            PyException_SetTraceback(value, traceback);
        }
        Py_XDECREF(type);
        Py_XDECREF(traceback);
        PyObject *pair = PyTuple_Pack(2, Py_None, value);
        Py_DECREF(value);
        return pair;
    }
    PyErr_Clear();
    return PyTuple_Pack(2, result, Py_None);
}

static int
plain_result_type(PyObject *result)
{
    PyTypeObject *t = Py_TYPE(result);
    return result == Py_None || t == &PyBool_Type || t == &PyLong_Type || t == &PyFloat_Type ||
           t == &PyUnicode_Type || t == &PyList_Type || t == &PyDict_Type ||
           t == &PyTuple_Type || t == &PyBytes_Type;
}

static PyObject *
plain_vectorcall(PlainCallsObject *self, PyObject *const *args, size_t nargsf,
                 PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "PlainCalls takes one positional argument");
        return NULL;
    }
    PyObject *data = args[0];
    if (!PyBytes_CheckExact(data) || PyList_GET_SIZE(self->codec) != 2) {
        Py_RETURN_NONE;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
    RepeHeader h;
    if (!repe_header(p, PyBytes_GET_SIZE(data), self->max_size, &h) || h.notify || h.ec != 0 ||
        h.query_format != 1 || h.body_format != 2) {
        Py_RETURN_NONE;
    }
    PyObject *query = PyBytes_FromStringAndSize((const char *)p + 48, (Py_ssize_t)h.query_length);
    if (query == NULL) {
        return NULL;
    }
    PyObject *func = PyDict_GetItemWithError(self->routes, query);  /* borrowed */
    Py_DECREF(query);
    if (func == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    Py_INCREF(func);
    PyObject *loads = Py_NewRef(PyList_GET_ITEM(self->codec, 0));
    PyObject *dumps = Py_NewRef(PyList_GET_ITEM(self->codec, 1));
    PyObject *out = NULL, *value = NULL, *result = NULL, *body = NULL;
    value = PyBytes_FromStringAndSize((const char *)p + 48 + h.query_length,
                                      (Py_ssize_t)h.body_length);
    if (value == NULL) {
        goto done;
    }
    Py_SETREF(value, PyObject_CallOneArg(loads, value));
    if (value == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear();
            out = Py_NewRef(Py_None);  /* the caller's path decodes it again and reports */
        }
        goto done;
    }
    result = PyObject_CallOneArg(func, value);
    if (result == NULL) {
        out = plain_outcome(NULL);
        goto done;
    }
    if (!plain_result_type(result)) {
        out = plain_outcome(result);
        goto done;
    }
    body = PyObject_CallOneArg(dumps, result);
    if (body == NULL) {
        out = PyErr_ExceptionMatches(PyExc_Exception) ? plain_outcome(result) : NULL;
        goto done;
    }
    out = response_from(h.id, body, 2, 0);
done:
    Py_XDECREF(body);
    Py_XDECREF(result);
    Py_XDECREF(value);
    Py_DECREF(dumps);
    Py_DECREF(loads);
    Py_DECREF(func);
    return out;
}

static PyTypeObject PlainCallsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tether.protocol._speedups.PlainCalls",
    .tp_doc = "PlainCalls(max_size, routes, codec): plain JSON calls answered in one C call.",
    .tp_basicsize = sizeof(PlainCallsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(PlainCallsObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = plain_new,
    .tp_dealloc = (destructor)plain_dealloc,
    .tp_traverse = (traverseproc)plain_traverse,
    .tp_clear = (inquiry)plain_clear,
};

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


/* ProtocolCore: the base class of tether.protocol.connection.Protocol. Its fields are
 * the per-message state (ProtocolCoreObject in _protocol_core.h); its methods handle a
 * read that holds only whole messages and an unfragmented message sent by a server
 * without extensions, and leave everything else to the protocol's _receive_more and
 * _send_data. fastpath.PyProtocolCore is the pure-Python reference. */

/* Payloads up to this size are queued as one bytes object with their header; larger
 * ones as two objects, so the payload is never copied to prepend a header
 * (_JOIN_LIMIT in connection.py). */
#define JOIN_LIMIT 2048

static PyObject *str_receive_more, *str_send_data;

static PyObject *
pcore_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    ProtocolCoreObject *self = (ProtocolCoreObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->events = PyList_New(0);
    self->out = PyList_New(0);
    if (self->events == NULL || self->out == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->probe = Py_NewRef(Py_None);
    self->state = Py_NewRef(Py_None);
    self->msg_opcode = PyLong_FromLong(-1);
    self->partial_checked = PyLong_FromLong(0);
    self->data_limit = PyLong_FromLong(-1);
    if (self->msg_opcode == NULL || self->partial_checked == NULL || self->data_limit == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    PyObject **flags[] = {&self->server, &self->fast_send, &self->discard,
                          &self->partial_frame, &self->failure_pending, &self->close_transport};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        *flags[i] = Py_NewRef(Py_False);
    }
    return (PyObject *)self;
}

#define PCORE_FIELDS(X)                                                                   \
    X(events) X(out) X(probe) X(state) X(msg_opcode) X(partial_checked) X(data_limit)     \
    X(server) X(fast_send) X(discard) X(partial_frame) X(failure_pending) X(close_transport)

static int
pcore_traverse(ProtocolCoreObject *self, visitproc visit, void *arg)
{
#define VISIT_FIELD(name) Py_VISIT(self->name);
    PCORE_FIELDS(VISIT_FIELD)
#undef VISIT_FIELD
    return 0;
}

static int
pcore_clear(ProtocolCoreObject *self)
{
#define CLEAR_FIELD(name) Py_CLEAR(self->name);
    PCORE_FIELDS(CLEAR_FIELD)
#undef CLEAR_FIELD
    return 0;
}

static void
pcore_dealloc(ProtocolCoreObject *self)
{
    PyObject_GC_UnTrack(self);
    pcore_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* self._receive_more(mv[:n], pos) */
static int
receive_more(ProtocolCoreObject *self, PyObject *mv, Py_ssize_t n, Py_ssize_t pos)
{
    PyObject *part = n == PyMemoryView_GET_BUFFER(mv)->len ? Py_NewRef(mv)
                                                           : PySequence_GetSlice(mv, 0, n);
    if (part == NULL) {
        return -1;
    }
    PyObject *at = PyLong_FromSsize_t(pos);
    if (at == NULL) {
        Py_DECREF(part);
        return -1;
    }
    PyObject *res = PyObject_CallMethodObjArgs((PyObject *)self, str_receive_more, part, at, NULL);
    Py_DECREF(part);
    Py_DECREF(at);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

/* receive_data(mv[:n]) for a C-contiguous memoryview mv and 0 <= n <= len(mv), without
 * making the slice unless the general path needs it. */
static int
receive_prefix(ProtocolCoreObject *self, PyObject *mv, Py_ssize_t n)
{
    int discard = core_flag(self->discard);
    if (discard != 0 || n == 0) {
        return discard < 0 ? -1 : 0;
    }
    int partial = core_flag(self->partial_frame);
    Py_ssize_t opcode = core_size(self->msg_opcode);
    Py_ssize_t limit = core_size(self->data_limit);
    int server = core_flag(self->server);
    if (partial < 0 || server < 0 || PyErr_Occurred()) {
        return -1;
    }
    if (partial || opcode >= 0 || !PyList_CheckExact(self->events)) {
        return receive_more(self, mv, n, 0);
    }
    /* No frame is pending: whole messages in one pass, usually all of the read. */
    Py_ssize_t consumed = parse_into((const unsigned char *)PyMemoryView_GET_BUFFER(mv)->buf,
                                     n, 0, n, server, limit, self->events);
    if (consumed < 0) {
        return -1;
    }
    if (consumed > 0 && self->probe != Py_None) {
        PyObject *zero = PyLong_FromLong(0);
        if (zero == NULL) {
            return -1;
        }
        Py_SETREF(self->probe, Py_NewRef(Py_None));
        Py_SETREF(self->partial_checked, zero);
    }
    return consumed < n ? receive_more(self, mv, n, consumed) : 0;
}

static PyObject *
pcore_receive_data(ProtocolCoreObject *self, PyObject *data)
{
    int discard = core_flag(self->discard);
    if (discard != 0) {
        return discard < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *mv = PyMemoryView_Check(data) ? Py_NewRef(data) : PyMemoryView_FromObject(data);
    if (mv == NULL) {
        return NULL;
    }
    int failed;
    if (!PyBuffer_IsContiguous(PyMemoryView_GET_BUFFER(mv), 'C')) {
        PyErr_SetString(PyExc_BufferError, "memoryview: underlying buffer is not C-contiguous");
        failed = -1;
    }
    else {
        failed = receive_prefix(self, mv, PyMemoryView_GET_BUFFER(mv)->len);
    }
    Py_DECREF(mv);
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Return the list in *field and put a new empty one in its place. */
static PyObject *
swap_list(PyObject **field)
{
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL) {
        return NULL;
    }
    PyObject *old = *field;
    *field = fresh;
    return old == NULL ? Py_NewRef(Py_None) : old;
}

static PyObject *
pcore_events_received(ProtocolCoreObject *self, PyObject *unused)
{
    return swap_list(&self->events);
}

static PyObject *
pcore_data_to_send(ProtocolCoreObject *self, PyObject *unused)
{
    return swap_list(&self->out);
}

static PyObject *
pcore_has_data_to_send(ProtocolCoreObject *self, PyObject *unused)
{
    int t = self->out == NULL ? 0 : PyObject_IsTrue(self->out);
    if (t < 0) {
        return NULL;
    }
    return PyBool_FromLong(t);
}

static int
append_new(PyObject *list, PyObject *item)
{
    if (item == NULL) {
        return -1;
    }
    int failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed;
}

/* Queue an unmasked final frame with first byte `first` and payload buf[:n]; `payload`
 * is the object buf belongs to (queued as it is when it is bytes and too large to join). */
static int
queue_server_frame(ProtocolCoreObject *self, int first, const char *buf, Py_ssize_t n,
                   PyObject *payload)
{
    if (!PyList_Check(self->out)) {
        PyErr_SetString(PyExc_TypeError, "_out must be a list");
        return -1;
    }
    unsigned char header[10];
    Py_ssize_t hlen = write_header(header, first, n, 0);
    if (n <= JOIN_LIMIT) {
        PyObject *frame = PyBytes_FromStringAndSize(NULL, hlen + n);
        if (frame == NULL) {
            return -1;
        }
        memcpy(PyBytes_AS_STRING(frame), header, hlen);
        memcpy(PyBytes_AS_STRING(frame) + hlen, buf, n);
        return append_new(self->out, frame);
    }
    if (append_new(self->out, PyBytes_FromStringAndSize((const char *)header, hlen)) < 0) {
        return -1;
    }
    if (payload != NULL && PyBytes_CheckExact(payload)) {
        return PyList_Append(self->out, payload);
    }
    return append_new(self->out, PyBytes_FromStringAndSize(buf, n));
}

/* send_text/send_binary(data, fin=True): the arguments, and whether fin is true. */
static int
send_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **data,
          PyObject **fin)
{
    static const char *const names[] = {"data", "fin"};
    PyObject *values[2] = {NULL, Py_True};
    if (nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "takes at most 2 arguments");
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        values[i] = args[i];
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        int k = 0;
        for (; k < 2; k++) {
            if (PyUnicode_CompareWithASCIIString(name, names[k]) == 0) {
                break;
            }
        }
        if (k == 2 || (k < nargs)) {
            PyErr_Format(PyExc_TypeError, "unexpected or repeated argument %R", name);
            return -1;
        }
        values[k] = args[nargs + i];
    }
    if (values[0] == NULL) {
        PyErr_SetString(PyExc_TypeError, "missing argument: data");
        return -1;
    }
    *data = values[0];
    *fin = values[1];
    return PyObject_IsTrue(values[1]);
}

static PyObject *
send_slow(ProtocolCoreObject *self, int opcode, PyObject *data, PyObject *fin)
{
    PyObject *op = PyLong_FromLong(opcode);
    if (op == NULL) {
        return NULL;
    }
    PyObject *res = PyObject_CallMethodObjArgs((PyObject *)self, str_send_data, op, data, fin,
                                               NULL);
    Py_DECREF(op);
    return res;
}

/* Queue a binary (0x2) or text (0x1) message whose bytes are `data`. */
static PyObject *
pcore_send(ProtocolCoreObject *self, int opcode, PyObject *data, PyObject *fin, int final)
{
    int fast = final ? core_flag(self->fast_send) : 0;
    if (fast < 0) {
        return NULL;
    }
    if (!fast) {
        return send_slow(self, opcode, data, fin);
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        /* The general path raises the same error for the same object. */
        PyErr_Clear();
        return send_slow(self, opcode, data, fin);
    }
    int failed = queue_server_frame(self, 0x80 | opcode, view.buf, view.len, data);
    PyBuffer_Release(&view);
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
pcore_send_binary(ProtocolCoreObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    PyObject *data, *fin;
    int final = send_args(args, nargs, kwnames, &data, &fin);
    if (final < 0) {
        return NULL;
    }
    return pcore_send(self, 0x2, data, fin, final);
}

static PyObject *
pcore_send_text(ProtocolCoreObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    PyObject *data, *fin;
    int final = send_args(args, nargs, kwnames, &data, &fin);
    if (final < 0) {
        return NULL;
    }
    if (!PyUnicode_Check(data)) {
        return pcore_send(self, 0x1, data, fin, final);
    }
    if (PyUnicode_READY(data) < 0) {
        return NULL;
    }
    int fast = final ? core_flag(self->fast_send) : 0;
    if (fast < 0) {
        return NULL;
    }
    if (fast && PyUnicode_IS_ASCII(data)) {
        /* ASCII text is its own UTF-8: frame it straight from the string. */
        if (queue_server_frame(self, 0x81, (const char *)PyUnicode_DATA(data),
                               PyUnicode_GET_LENGTH(data), NULL) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    PyObject *encoded = PyUnicode_AsUTF8String(data);
    if (encoded == NULL) {
        return NULL;
    }
    PyObject *res = pcore_send(self, 0x1, encoded, fin, final);
    Py_DECREF(encoded);
    return res;
}

static int
api_send_message(ProtocolCoreObject *self, PyObject *data, int text)
{
    PyObject *res;
    if (text) {
        PyObject *args[1] = {data};
        res = pcore_send_text(self, args, 1, NULL);
    }
    else {
        res = pcore_send(self, 0x2, data, Py_True, 1);
    }
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

static ProtocolCoreAPI protocol_core_api = {receive_prefix, api_send_message};

static PyMethodDef pcore_methods[] = {
    {"receive_data", (PyCFunction)pcore_receive_data, METH_O,
     "Feed bytes received from the network.\n\n"
     "Call events_received() and data_to_send() afterwards."},
    {"events_received", (PyCFunction)pcore_events_received, METH_NOARGS,
     "Return and clear the events parsed since the last call."},
    {"data_to_send", (PyCFunction)pcore_data_to_send, METH_NOARGS,
     "Return and clear the bytes to write to the network, in order."},
    {"has_data_to_send", (PyCFunction)pcore_has_data_to_send, METH_NOARGS,
     "Tell whether data_to_send() would return something."},
    {"send_text", (PyCFunction)(void (*)(void))pcore_send_text, METH_FASTCALL | METH_KEYWORDS,
     "Queue a text frame; data is UTF-8 encoded when it is a str.\n\n"
     "With fin=False it starts a fragmented message: continue it with send_continuation()."},
    {"send_binary", (PyCFunction)(void (*)(void))pcore_send_binary,
     METH_FASTCALL | METH_KEYWORDS, "Queue a binary frame; see send_text() for fin."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef pcore_members[] = {
    {"_events", T_OBJECT_EX, offsetof(ProtocolCoreObject, events), 0, NULL},
    {"_out", T_OBJECT_EX, offsetof(ProtocolCoreObject, out), 0, NULL},
    {"_probe", T_OBJECT_EX, offsetof(ProtocolCoreObject, probe), 0, NULL},
    {"state", T_OBJECT_EX, offsetof(ProtocolCoreObject, state), 0, "The connection's state."},
    {"_msg_opcode", T_OBJECT_EX, offsetof(ProtocolCoreObject, msg_opcode), 0, NULL},
    {"_partial_checked", T_OBJECT_EX, offsetof(ProtocolCoreObject, partial_checked), 0, NULL},
    {"_data_limit", T_OBJECT_EX, offsetof(ProtocolCoreObject, data_limit), 0, NULL},
    {"_server", T_OBJECT_EX, offsetof(ProtocolCoreObject, server), 0, NULL},
    {"_fast_send", T_OBJECT_EX, offsetof(ProtocolCoreObject, fast_send), 0, NULL},
    {"_discard", T_OBJECT_EX, offsetof(ProtocolCoreObject, discard), 0, NULL},
    {"partial_frame", T_OBJECT_EX, offsetof(ProtocolCoreObject, partial_frame), 0,
     "A frame is partly received: get_buffer() returns where the rest goes."},
    {"failure_pending", T_OBJECT_EX, offsetof(ProtocolCoreObject, failure_pending), 0,
     "A protocol error waits for the application to consume earlier messages."},
    {"close_transport", T_OBJECT_EX, offsetof(ProtocolCoreObject, close_transport), 0,
     "The runtime should close the TCP connection."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ProtocolCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tether.protocol._speedups.ProtocolCore",
    .tp_doc = "The per-message fields and methods of a protocol.",
    .tp_basicsize = sizeof(ProtocolCoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = pcore_new,
    .tp_dealloc = (destructor)pcore_dealloc,
    .tp_traverse = (traverseproc)pcore_traverse,
    .tp_clear = (inquiry)pcore_clear,
    .tp_methods = pcore_methods,
    .tp_members = pcore_members,
};

static PyMethodDef speedups_methods[] = {
    {"_set_masking", set_masking, METH_O,
     "_set_masking(name) -> str\n\n"
     "Use the masking loop called name (\"portable\", \"sse2\", \"avx2\") and return the\n"
     "name of the one it replaces; ValueError if this build or CPU has none of that name."},
    {"scan_head", scan_head, METH_O,
     "scan_head(head) -> (target, fields) | None\n\n"
     "Split a GET HTTP/1.1 request head of visible ASCII into its target and its fields\n"
     "(lowercase name to value without surrounding whitespace); None if it is not one\n"
     "or repeats a field name."},
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_VARARGS | METH_KEYWORDS,
     "apply_mask(data, mask, offset=0) -> bytes\n\n"
     "XOR data with the 4-byte mask, starting at mask position offset % 4."},
    {"masked_frame", (PyCFunction)(void (*)(void))masked_frame, METH_FASTCALL,
     "masked_frame(first_byte, payload, mask) -> bytes\n\n"
     "A whole masked frame: header, masking key and masked payload in one object."},
    {"parse_messages", parse_messages, METH_VARARGS,
     "parse_messages(data, pos, end, masked, limit, events) -> int\n\n"
     "Append complete unfragmented text/binary messages to events; return the new position."},
    {"repe_setup", repe_setup, METH_VARARGS,
     "repe_setup(message_type, names) -> None\n\n"
     "Set the class and slot names repe_decode builds messages with."},
    {"repe_encode_response", (PyCFunction)(void (*)(void))repe_encode_response, METH_FASTCALL,
     "repe_encode_response(id, body, body_format, ec=0) -> bytes\n\n"
     "A REPE response with an empty raw query, header and body in one bytes object."},
    {"repe_decode", (PyCFunction)(void (*)(void))repe_decode, METH_FASTCALL,
     "repe_decode(max_size, copy_limit, [fallback,] data) -> message | None\n\n"
     "A valid REPE v1 message in a bytes object, or None (fallback(data) if given)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "tether.protocol._speedups", NULL, -1, speedups_methods,
};

static PyObject *
import_struct_error(void)
{
    PyObject *module = PyImport_ImportModule("struct");
    if (module == NULL) {
        return NULL;
    }
    PyObject *error = PyObject_GetAttrString(module, "error");
    Py_DECREF(module);
    return error;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    struct_error = import_struct_error();
    if (struct_error == NULL) {
        return NULL;
    }
    pick_xor_mask();
    str_receive_more = PyUnicode_InternFromString("_receive_more");
    str_send_data = PyUnicode_InternFromString("_send_data");
    if (str_receive_more == NULL || str_send_data == NULL) {
        return NULL;
    }
    if (PyType_Ready(&PayloadType) < 0 || PyType_Ready(&ProtocolCoreType) < 0 ||
        PyType_Ready(&PlainCallsType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    PyObject *api = PyCapsule_New(&protocol_core_api, PROTOCOL_CORE_CAPSULE, NULL);
    if (api == NULL || PyModule_AddObject(module, "_C_API", api) < 0) {
        Py_XDECREF(api);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Payload", (PyObject *)&PayloadType) < 0 ||
        PyModule_AddObjectRef(module, "ProtocolCore", (PyObject *)&ProtocolCoreType) < 0 ||
        PyModule_AddObjectRef(module, "PlainCalls", (PyObject *)&PlainCallsType) < 0 ||
        PyModule_AddStringConstant(module, "MASKING", xor_mask_name) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
