/* The fields of tether.protocol._speedups.ProtocolCore, the base class of
 * tether.protocol.connection.Protocol (see fastpath.PyProtocolCore for what each holds).
 * Shared with tether/asyncio/_speedups.c, which reads them directly from connections
 * whose protocol is an instance of this type; both extensions are built from this
 * header together. */

#ifndef TETHER_PROTOCOL_CORE_H
#define TETHER_PROTOCOL_CORE_H

#include <Python.h>

typedef struct {
    PyObject_HEAD
    PyObject *events;            /* list of events parsed since events_received() */
    PyObject *out;               /* list of bytes to write, in order */
    PyObject *probe;             /* UTF-8 decoder checking a partial text frame, or None */
    PyObject *state;             /* a State member */
    Py_ssize_t msg_opcode;       /* opcode of the fragmented message in progress, or -1 */
    Py_ssize_t partial_checked;  /* bytes of the partial frame already UTF-8 checked */
    Py_ssize_t data_limit;       /* largest data frame payload accepted here, -1: none */
    char server;                 /* the server side: frames arrive masked */
    char fast_send;              /* a final frame may be queued without further checks */
    char discard;                /* input is discarded: the connection failed */
    char partial_frame;          /* a frame is partly received */
    char failure_pending;        /* a failure waits for earlier messages to be consumed */
    char close_transport;        /* the TCP connection should be closed */
} ProtocolCoreObject;

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
