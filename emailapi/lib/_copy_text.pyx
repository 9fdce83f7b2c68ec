# cython: language_level=3, boundscheck=False, wraparound=False
"""One row of PostgreSQL's ``COPY ... FROM STDIN`` text format, in C: the bytes psycopg's
``Copy.write_row`` sends for the same values, JSON columns written as the index writer writes
them (``orjson``'s text, or the standard encoder's for what orjson gives the same).

Why: after parsing was compiled, turning each new index row into COPY text was a fifth of a
first index's time in this process: a Python list of the row's values, ``orjson`` once per
JSON column, then psycopg adapting each value by its type. Here one pass writes the line.

What is not plain is left to the caller (``None``): a value of another type than None, str,
bool, int, datetime (and, in a JSON column, list, tuple, dict with str keys), a str with a NUL
or a lone surrogate, in a text column or in JSON. The caller then adapts that row with psycopg, so what PostgreSQL receives
(or refuses) is the same. ``tests/emailapi/test_copy_text.py`` holds the two to the same bytes.
Built by ``make``. ``_copy_text.pxd`` lends the buffer and the value writers to other compiled
modules (the message index's row writer).
"""

from cpython.datetime cimport (
    PyDateTime_CheckExact, PyDelta_Check, datetime_day, datetime_hour, datetime_microsecond,
    datetime_minute, datetime_month, datetime_second, datetime_tzinfo, datetime_year,
    import_datetime, timedelta_days, timedelta_microseconds, timedelta_seconds,
)
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdio cimport snprintf

import_datetime()


class _Unsupported(Exception):
    """A value this module leaves to psycopg."""


cdef int _reserve(Buffer *out, Py_ssize_t extra) except -1:
    cdef Py_ssize_t need = out.size + extra, capacity
    cdef char *data
    if need <= out.capacity:
        return 0
    capacity = max(need, 2 * out.capacity, 1024)
    data = <char *>PyMem_Realloc(out.data, capacity)
    if data == NULL:
        raise MemoryError()
    out.data = data
    out.capacity = capacity
    return 0


cdef const char *_utf8(str text, Py_ssize_t *size) except NULL:
    """The UTF-8 of *text* (cached in the str); a lone surrogate cannot be sent."""
    cdef const char *data
    try:
        data = PyUnicode_AsUTF8AndSize(text, size)
    except UnicodeEncodeError:
        raise _Unsupported()
    return data


# COPY text's escapes (psycopg's ``_dump_repl``): backspace, tab, LF, VT, FF, CR, backslash.
cdef inline char _copy_escape(unsigned char c) noexcept:
    if c == 8:
        return 98  # b
    if c == 9:
        return 116  # t
    if c == 10:
        return 110  # n
    if c == 11:
        return 118  # v
    if c == 12:
        return 102  # f
    if c == 13:
        return 114  # r
    if c == 92:
        return 92
    return 0


cdef int _text(Buffer *out, str value) except -1:
    """A str column: its UTF-8 with COPY's escapes; a NUL cannot be sent in text."""
    cdef Py_ssize_t size, i, start = 0
    cdef const unsigned char *data = <const unsigned char *>_utf8(value, &size)
    cdef char escape
    for i in range(size):
        if data[i] == 0:
            raise _Unsupported()
        escape = _copy_escape(data[i])
        if escape:
            _put(out, <const char *>data + start, i - start)
            _byte(out, 92)
            _byte(out, escape)
            start = i + 1
    _put(out, <const char *>data + start, size - start)
    return 0


cdef int _ascii(Buffer *out, str value) except -1:
    """Text known to be ASCII with nothing to escape (numbers, timestamps)."""
    cdef Py_ssize_t size
    cdef const char *data = _utf8(value, &size)
    _put(out, data, size)
    return 0


cdef int _integer(Buffer *out, object value) except -1:
    """An int as ``str`` writes it."""
    cdef int overflow = 0
    cdef long long number = PyLong_AsLongLongAndOverflow(value, &overflow)
    cdef char text[24]
    if overflow:
        return _ascii(out, str(value))
    _put(out, text, snprintf(text, sizeof(text), "%lld", number))
    return 0


cdef int _timestamp(Buffer *out, object value) except -1:
    """A datetime as ``str`` writes it (``isoformat(" ")``): microseconds only when there
    are some, the offset as ``+HH:MM``, with ``:SS[.ffffff]`` when it has them."""
    cdef char text[64]
    cdef int size = snprintf(text, sizeof(text), "%04d-%02d-%02d %02d:%02d:%02d",
                             datetime_year(value), datetime_month(value), datetime_day(value),
                             datetime_hour(value), datetime_minute(value),
                             datetime_second(value))
    if datetime_microsecond(value):
        size += snprintf(text + size, sizeof(text) - size, ".%06d", datetime_microsecond(value))
    _put(out, text, size)
    zone = datetime_tzinfo(value)
    if zone is None:
        return 0
    offset = zone.utcoffset(value)
    if offset is None:
        return 0
    if not PyDelta_Check(offset):
        raise _Unsupported()
    cdef long long total = (<long long>timedelta_days(offset) * 86400
                            + timedelta_seconds(offset)) * 1000000 \
        + timedelta_microseconds(offset)
    cdef char sign = 43  # +
    if total < 0:
        sign = 45  # -
        total = -total
    cdef long long hours = total // 3600000000LL
    cdef long long minutes = total // 60000000LL % 60
    cdef long long seconds = total // 1000000 % 60
    cdef long long micros = total % 1000000
    size = snprintf(text, sizeof(text), "%c%02lld:%02lld", sign, hours, minutes)
    if seconds or micros:
        size += snprintf(text + size, sizeof(text) - size, ":%02lld", seconds)
        if micros:
            size += snprintf(text + size, sizeof(text) - size, ".%06lld", micros)
    _put(out, text, size)
    return 0


cdef const char *_HEX = b"0123456789abcdef"


cdef int _json_string(Buffer *out, str value) except -1:
    """A JSON string as orjson writes it (``\\"``, ``\\\\``, short escapes for BS, TAB, LF, FF
    and CR, ``\\u00xx`` for the other control characters, the rest as UTF-8), every backslash
    doubled for COPY. A NUL is left to the caller, as in a text column: jsonb refuses its
    ``\\u0000``, and a sender's NUL in a name failed a whole COPY (the index stores it as
    U+FFFD, ``emailapi.lib.storable``)."""
    cdef Py_ssize_t size, i, start = 0
    cdef const unsigned char *data = <const unsigned char *>_utf8(value, &size)
    cdef unsigned char c
    _byte(out, 34)
    for i in range(size):
        c = data[i]
        if c >= 32 and c != 34 and c != 92:
            continue
        if c == 0:
            raise _Unsupported()
        _put(out, <const char *>data + start, i - start)
        start = i + 1
        _put(out, b"\\\\", 2)
        if c == 34:
            _byte(out, 34)
        elif c == 92:
            _put(out, b"\\\\", 2)
        elif c == 8:
            _byte(out, 98)
        elif c == 9:
            _byte(out, 116)
        elif c == 10:
            _byte(out, 110)
        elif c == 12:
            _byte(out, 102)
        elif c == 13:
            _byte(out, 114)
        else:
            _put(out, b"u00", 3)
            _byte(out, _HEX[c >> 4])
            _byte(out, _HEX[c & 15])
    _put(out, <const char *>data + start, size - start)
    _byte(out, 34)
    return 0


cdef int _json(Buffer *out, object value, int depth) except -1:
    cdef Py_ssize_t i, n
    if depth > 32:
        raise _Unsupported()
    if value is None:
        _put(out, b"null", 4)
    elif value is True:
        _put(out, b"true", 4)
    elif value is False:
        _put(out, b"false", 5)
    elif type(value) is str:
        _json_string(out, <str>value)
    elif type(value) is int:
        _integer(out, value)
    elif type(value) is list or type(value) is tuple:
        _byte(out, 91)
        n = len(value)
        for i in range(n):
            if i:
                _byte(out, 44)
            _json(out, value[i], depth + 1)
        _byte(out, 93)
    elif type(value) is dict:
        _byte(out, 123)
        first = True
        for key, item in (<dict>value).items():
            if type(key) is not str:
                raise _Unsupported()
            if not first:
                _byte(out, 44)
            first = False
            _json_string(out, <str>key)
            _byte(out, 58)
            _json(out, item, depth + 1)
        _byte(out, 125)
    else:
        raise _Unsupported()
    return 0


cdef int _value(Buffer *out, object value, bint json) except -1:
    if value is None:
        _put(out, b"\\N", 2)
    elif json:
        _json(out, value, 0)
    elif type(value) is str:
        _text(out, <str>value)
    elif value is True:
        _byte(out, 116)
    elif value is False:
        _byte(out, 102)
    elif type(value) is int:
        _integer(out, value)
    elif PyDateTime_CheckExact(value):
        _timestamp(out, value)
    else:
        raise _Unsupported()
    return 0


def row(values, tuple names, tuple json):
    """The COPY text line (with its newline) of ``values[name]`` for each of *names*, the
    ones whose *json* flag is set written as JSON; ``None`` where psycopg must adapt it."""
    cdef Buffer out = _empty()
    cdef Py_ssize_t i, n = len(names)
    try:
        for i in range(n):
            if i:
                _byte(&out, 9)
            _value(&out, values[names[i]], json[i] is True)
        return _line(&out)
    except _Unsupported:
        return None
    finally:
        PyMem_Free(out.data)
