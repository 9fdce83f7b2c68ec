# What other compiled modules may use of _copy_text.pyx (``cimport``): the line buffer and the
# writers of COPY values and JSON, so that a writer of one table's rows (the message index's:
# mailboxes/sync/_row_lines.pyx) writes every value exactly as ``row`` does.
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.string cimport memcpy


cdef struct Buffer:
    char *data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int _reserve(Buffer *out, Py_ssize_t extra) except -1
cdef int _json(Buffer *out, object value, int depth) except -1
cdef int _value(Buffer *out, object value, bint json) except -1


cdef inline int _put(Buffer *out, const char *text, Py_ssize_t size) except -1:
    _reserve(out, size)
    memcpy(out.data + out.size, text, size)
    out.size += size
    return 0


cdef inline int _byte(Buffer *out, char c) except -1:
    if out.size >= out.capacity:
        _reserve(out, 1)
    out.data[out.size] = c
    out.size += 1
    return 0


cdef inline Buffer _empty() noexcept:
    """A line's buffer, nothing allocated yet (``PyMem_Free`` its data when done)."""
    cdef Buffer out
    out.data = NULL
    out.size = 0
    out.capacity = 0
    return out


cdef inline bytes _line(Buffer *out):
    """The line written so far, ended with its newline, as bytes."""
    _byte(out, 10)
    return PyBytes_FromStringAndSize(out.data, out.size)
