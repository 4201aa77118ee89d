/* Optional accelerator for tether.protocol: payload masking and the common-case frame parser.
 * The pure-Python fallbacks in masking.py and fastpath.py give identical results (tests
 * check both). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* XOR n bytes of in with the 4-byte key m, starting at key position offset % 4. */
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
    Py_ssize_t n = data.len;
    if (n >= 65536) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(in, out, n, m, offset);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_mask(in, out, n, m, offset);
    }
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

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_VARARGS | METH_KEYWORDS,
     "apply_mask(data, mask, offset=0) -> bytes\n\n"
     "XOR data with the 4-byte mask, starting at mask position offset % 4."},
    {"parse_messages", parse_messages, METH_VARARGS,
     "parse_messages(data, pos, end, masked, limit, events) -> int\n\n"
     "Append complete unfragmented text/binary messages to events; return the new position."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "tether.protocol._speedups", NULL, -1, speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
