# cython: language_level=3, boundscheck=False, wraparound=False
"""Header values compiled: the same results as ``parse``'s Python functions of the same names
(``decode_header``, ``_header_fields``, ``normalize_message_id``, ``message_id_list``,
``parse_date``, ``parse_internaldate``, ``header_addresses``).

Why: after the tokenizer was compiled, interpreting a message's FETCH items was the largest part
of a first index's time in this process (``message_meta``, about 46 us a message), and nearly
half of it was these: each sender's and recipient's name and each subject decoded (RFC 2047
words, about 2.7 us a name through a regex, a quoted-printable or base64 call, a join and a
codec lookup), dates and message ids read by regexes, the header block split line by line.
Here each is one pass over the bytes, in C.

What is not the common case is handed back to Python, not written twice: a run of words in a
charset other than UTF-8 goes to ``parse.decode_charset`` (aliases, mislabelled text), a Q
word with an ``=`` that is not ``=XX`` to ``binascii.a2b_qp``, and a date in any shape but
the usual one to ``parse``'s own function (``bind`` hands them over).

Why it is safe with a server's bytes: every read is of a ``bytes`` object this code holds, at
an index each loop checks against its length first, and every result is written into a new
``bytes`` as long as its source, which no result outgrows, before anyone else sees it.

The rules are ``parse.py``'s, which stays the reference (and the fallback where this module
was not built); ``tests/mailboxes/test_imap_headers.py`` holds both to the same results over
hand-picked values, every header of the message corpus and random values made of the pieces
each syntax turns on. Built by ``make``.
"""

import binascii

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.datetime cimport datetime_new, import_datetime

from .types import Address

import_datetime()

_python = {}  # parse's own functions this module hands the uncommon cases to (``bind``)


def bind(**functions):
    """Take what ``parse`` owns (this module cannot import ``parse``, which imports it): the
    functions for what is not done here: ``decode_bytes``, ``decode_charset``, ``parse_date``,
    ``parse_internaldate``, ``zone`` (the shared ``timezone`` of an offset in minutes) and
    ``utc``."""
    _python.update(functions)


cdef inline bint _space(unsigned char c) noexcept:
    # The bytes regex's \s and bytes.isspace(): space, \t \n \v \f \r.
    return c == 32 or (9 <= c <= 13)


cdef inline int _hex(unsigned char c) noexcept:
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1


cdef inline int _base64(unsigned char c) noexcept:
    if 65 <= c <= 90:
        return c - 65
    if 97 <= c <= 122:
        return c - 71
    if 48 <= c <= 57:
        return c + 4
    if c == 43:
        return 62
    if c == 47:
        return 63
    return -1


cdef inline const unsigned char *_at(bytes data):
    """The bytes of *data*, read only while the caller holds *data*."""
    return <const unsigned char *>PyBytes_AS_STRING(data)


cdef inline unsigned char *_fresh(bytes result):
    """Where to write a ``bytes`` just made (``PyBytes_FromStringAndSize(NULL, n)``) and not
    yet seen by anyone; never one of length 0 (shared)."""
    return <unsigned char *>PyBytes_AS_STRING(result)


cdef inline bytes _first(bytes result, Py_ssize_t count):
    """*result* cut to the *count* bytes written."""
    return result if count == PyBytes_GET_SIZE(result) else result[:count]


cdef str _decode_bytes(bytes data):
    """``parse.decode_bytes`` (undeclared 8-bit text), whose rule it calls for anything but
    ASCII, where every choice it makes gives the same text."""
    cdef const unsigned char *s = _at(data)
    cdef Py_ssize_t i
    for i in range(len(data)):
        if s[i] >= 128:
            return _python["decode_bytes"](data)
    return data.decode("ascii")


cdef bytes _b_word(const unsigned char *s, Py_ssize_t start, Py_ssize_t end):
    """``parse._b_decode``: base64 with anything outside its alphabet dropped (``=`` too), a
    lone last sixth-bit character dropped, and missing padding forgiven."""
    if end <= start:
        return b""
    cdef bytes result = PyBytes_FromStringAndSize(NULL, end - start)
    cdef unsigned char *out = _fresh(result)
    cdef Py_ssize_t k = 0
    cdef unsigned int bits = 0
    cdef int count = 0, value
    cdef Py_ssize_t i
    for i in range(start, end):
        value = _base64(s[i])
        if value < 0:
            continue
        bits = ((bits << 6) | value) & 0xFFFFFF
        count += 1
        if count == 4:
            out[k] = (bits >> 16) & 0xFF
            out[k + 1] = (bits >> 8) & 0xFF
            out[k + 2] = bits & 0xFF
            k += 3
            count = 0
    if count == 2:
        out[k] = (bits >> 4) & 0xFF
        k += 1
    elif count == 3:
        out[k] = (bits >> 10) & 0xFF
        out[k + 1] = (bits >> 2) & 0xFF
        k += 2
    return _first(result, k)


cdef bytes _q_word(bytes value, const unsigned char *s, Py_ssize_t start, Py_ssize_t end):
    """``binascii.a2b_qp(text, header=True)``: ``_`` is a space, ``=XX`` a byte. Any other
    ``=`` (a soft line break, a broken escape) is left to binascii itself."""
    if end <= start:
        return b""
    cdef bytes result = PyBytes_FromStringAndSize(NULL, end - start)
    cdef unsigned char *out = _fresh(result)
    cdef Py_ssize_t i = start, k = 0
    cdef int high, low
    cdef unsigned char c
    while i < end:
        c = s[i]
        if c == 61:  # "="
            if i + 2 >= end:
                return binascii.a2b_qp(value[start:end], header=True)
            high = _hex(s[i + 1])
            low = _hex(s[i + 2])
            if high < 0 or low < 0:
                return binascii.a2b_qp(value[start:end], header=True)
            out[k] = high * 16 + low
            i += 3
        else:
            out[k] = 32 if c == 95 else c
            i += 1
        k += 1
    return _first(result, k)


cdef Py_ssize_t _word_end(const unsigned char *s, Py_ssize_t i, Py_ssize_t n,
                          Py_ssize_t *charset_end, Py_ssize_t *text_start):
    """Just past the encoded-word ``=?charset?X?text?=`` that starts at *i* (``s[i:i+2]`` is
    ``=?``), or -1: the regex ``=\\?([^?\\s]*)\\?([QqBb])\\?([^?]*)\\?=`` at *i*. Each part's
    class excludes the ``?`` after it, so the first ``?`` ends it and nothing backtracks."""
    cdef Py_ssize_t j = i + 2
    cdef unsigned char c
    while j < n:
        c = s[j]
        if c == 63 or _space(c):
            break
        j += 1
    if j >= n or s[j] != 63:
        return -1
    charset_end[0] = j
    if j + 2 >= n or s[j + 2] != 63:
        return -1
    c = s[j + 1]
    if not (c == 81 or c == 113 or c == 66 or c == 98):
        return -1
    j += 3
    text_start[0] = j
    while j < n and s[j] != 63:
        j += 1
    if j + 1 >= n or s[j + 1] != 61:
        return -1
    return j + 2


cdef void _flush(list out, list run, bytes charset):
    if not run:
        return
    data = b"".join(run)
    del run[:]
    if charset == b"utf-8":  # decode_charset's answer whenever the bytes are valid UTF-8
        try:
            out.append(data.decode("utf-8"))
            return
        except UnicodeDecodeError:
            pass
    out.append(_python["decode_charset"](data, charset))


cdef bint _plain(const unsigned char *s, Py_ssize_t n):
    """ASCII with no ``=?``, CR or LF: the text is the bytes as they are."""
    cdef Py_ssize_t i
    cdef unsigned char c
    for i in range(n):
        c = s[i]
        if c >= 128 or c == 10 or c == 13:
            return False
        if c == 61 and i + 1 < n and s[i + 1] == 63:
            return False
    return True


def decode_header(value):
    """``parse.python_decode_header``, compiled."""
    if not isinstance(value, bytes) or not value:
        return ""
    cdef bytes data = <bytes>value
    cdef const unsigned char *s = _at(data)
    cdef Py_ssize_t n = len(data)
    if _plain(s, n):
        return data.decode("ascii")
    if b"\n" in data or b"\r" in data:
        data = _unfold(data)
        s = _at(data)
        n = len(data)
    if b"=?" not in data:
        return _decode_bytes(data)
    cdef list out = []
    cdef list run = []
    cdef bytes run_charset = b""
    cdef bytes charset, gap
    cdef Py_ssize_t pos = 0, i = 0, end, charset_end = 0, text_start = 0
    cdef unsigned char kind
    while i + 1 < n:
        if s[i] != 61 or s[i + 1] != 63:
            i += 1
            continue
        end = _word_end(s, i, n, &charset_end, &text_start)
        if end < 0:
            i += 1
            continue
        if i > pos:
            gap = data[pos:i]
            if not (run and gap.isspace()):
                _flush(out, run, run_charset)
                out.append(_decode_bytes(gap))
        charset = data[i + 2:charset_end].split(b"*", 1)[0].lower()
        if run and charset != run_charset:
            _flush(out, run, run_charset)
        run_charset = charset
        kind = s[charset_end + 1]
        if kind == 66 or kind == 98:
            run.append(_b_word(s, text_start, end - 2))
        else:
            run.append(_q_word(data, s, text_start, end - 2))
        pos = i = end
    _flush(out, run, run_charset)
    if pos < n:
        out.append(_decode_bytes(data[pos:]))
    return "".join(out)


cdef bytes _unfold(bytes value):
    """``parse._unfold``: it drops the CRLF or LF of a fold, then every other CR and LF, which
    comes to every CR and LF dropped."""
    cdef const unsigned char *s = _at(value)
    cdef Py_ssize_t n = len(value), i, k = 0
    cdef bytes result = PyBytes_FromStringAndSize(NULL, n)  # n > 0: it holds a CR or LF
    cdef unsigned char *out = _fresh(result)
    for i in range(n):
        if s[i] != 13 and s[i] != 10:
            out[k] = s[i]
            k += 1
    return _first(result, k)


# -- header fields ---------------------------------------------------------------------------


cdef inline Py_ssize_t _strip_start(const unsigned char *s, Py_ssize_t i, Py_ssize_t end):
    while i < end and _space(s[i]):
        i += 1
    return i


cdef inline Py_ssize_t _strip_end(const unsigned char *s, Py_ssize_t start, Py_ssize_t i):
    while i > start and _space(s[i - 1]):
        i -= 1
    return i


def header_fields(block):
    """``parse._header_fields``, compiled: name (lower-case) -> value, the first of a name
    winning, from a block whose folded lines (a CRLF or LF before a space or tab) are joined."""
    if not isinstance(block, bytes) or b":" not in block:
        return {}
    cdef bytes raw = <bytes>block
    cdef const unsigned char *r = _at(raw)
    cdef Py_ssize_t n = len(raw), i, k = 0
    cdef bytes joined = PyBytes_FromStringAndSize(NULL, n)  # n > 0: it holds a colon
    cdef unsigned char *out = _fresh(joined)
    for i in range(n):
        if r[i] == 10 and i + 1 < n and (r[i + 1] == 32 or r[i + 1] == 9):
            if i > 0 and r[i - 1] == 13:
                k -= 1  # the CR just written belongs to the fold
            continue
        out[k] = r[i]
        k += 1
    cdef bytes data = raw if k == n else joined[:k]
    cdef const unsigned char *s = _at(data)
    cdef dict fields = {}
    cdef Py_ssize_t start = 0, end, colon, name_start, name_end
    n = len(data)
    while start <= n:
        end = start
        while end < n and s[end] != 10:
            end += 1
        colon = start
        while colon < end and s[colon] != 58:
            colon += 1
        if colon < end:
            name_start = _strip_start(s, start, colon)
            name_end = _strip_end(s, name_start, colon)
            if name_end > name_start:
                name = data[name_start:name_end].lower().decode("ascii", "replace")
                if name not in fields:
                    i = _strip_start(s, colon + 1, end)
                    fields[name] = data[i:_strip_end(s, i, end)]
        start = end + 1
    return fields


# -- message ids -----------------------------------------------------------------------------


cdef bytes _without_space(bytes data):
    """``_SPACE.sub(b"", data)``: every space, tab, CR, LF, VT and FF removed."""
    cdef const unsigned char *s = _at(data)
    cdef Py_ssize_t i, n = len(data)
    for i in range(n):
        if _space(s[i]):
            break
    else:
        return data
    cdef bytes result = PyBytes_FromStringAndSize(NULL, n)  # n > 0: it holds a space
    cdef unsigned char *out = _fresh(result)
    cdef Py_ssize_t k = 0
    for i in range(n):
        if not _space(s[i]):
            out[k] = s[i]
            k += 1
    return _first(result, k)


cdef Py_ssize_t _id_end(const unsigned char *s, Py_ssize_t start, Py_ssize_t n,
                        Py_ssize_t *found):
    """The next ``<[^<>]*>`` at or after *start*: its start in ``found[0]`` and its end
    returned, or -1 when there is none."""
    cdef Py_ssize_t i = start, j
    while i < n:
        if s[i] != 60:  # "<"
            i += 1
            continue
        j = i + 1
        while j < n and s[j] != 60 and s[j] != 62:
            j += 1
        if j < n and s[j] == 62:
            found[0] = i
            return j + 1
        i = j  # another "<" (a start to try) or the end
    return -1


def normalize_message_id(value):
    """``parse.normalize_message_id``, compiled."""
    if not isinstance(value, bytes):
        return None
    cdef bytes data = <bytes>value
    cdef const unsigned char *s = _at(data)
    cdef Py_ssize_t start = 0, end = _id_end(s, 0, len(data), &start)
    cdef bytes text = _without_space(data[start:end] if end >= 0 else data)
    return _decode_bytes(text) if text and text != b"<>" else None


def message_id_list(value):
    """``parse.message_id_list``, compiled."""
    if not isinstance(value, bytes):
        return []
    cdef bytes data = <bytes>value
    cdef const unsigned char *s = _at(data)
    cdef Py_ssize_t n = len(data), start = 0, end = 0
    cdef list found = []
    while True:
        end = _id_end(s, end, n, &start)
        if end < 0:
            break
        found.append(data[start:end])
    cdef dict seen = {}
    for raw in found or data.split():
        text = _decode_bytes(_without_space(raw))
        if text and text != "<>" and text not in seen:
            seen[text] = None
    return list(seen)


# -- dates -----------------------------------------------------------------------------------


cdef inline bint _digit(unsigned char c) noexcept:
    return 48 <= c <= 57


cdef inline bint _letter(unsigned char c) noexcept:
    return 65 <= c <= 90 or 97 <= c <= 122


cdef int _month(const unsigned char *s, Py_ssize_t i) noexcept:
    """The number of the month named by the three letters at *i* (any case), or 0."""
    cdef unsigned char a = s[i] | 32, b = s[i + 1] | 32, c = s[i + 2] | 32
    cdef const char *names = b"janfebmaraprmayjunjulaugsepoctnovdec"
    cdef int m
    for m in range(12):
        if names[3 * m] == a and names[3 * m + 1] == b and names[3 * m + 2] == c:
            return m + 1
    return 0


cdef inline int _number(const unsigned char *s, Py_ssize_t i, Py_ssize_t count) noexcept:
    cdef int value = 0
    cdef Py_ssize_t k
    for k in range(count):
        value = value * 10 + (s[i + k] - 48)
    return value


cdef object _aware(int day, int month, int year, int hour, int minute, int second,
                   unsigned char sign, int offset):
    """``parse._aware`` from numbers: a month of 0 (no such name) is no date, nor a year an
    offset could take out of a datetime's range (``parse._YEARS``)."""
    if month == 0 or year < 2 or year > 9998:
        return None
    if offset >= 24 * 60:
        offset = 0
    try:
        return datetime_new(year, month, day, hour, minute, min(second, 59), 0,
                            _python["zone"](-offset if sign == 45 else offset))
    except ValueError:
        return None


cdef Py_ssize_t _digits(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t most):
    """How many digits (up to *most*) start at *i*."""
    cdef Py_ssize_t k = 0
    while k < most and i + k < n and _digit(s[i + k]):
        k += 1
    return k


cdef bint _shaped(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, unsigned char sep,
                  int *day, Py_ssize_t *at):
    """Whether the day of one or two digits at *i* is followed by the 24 bytes
    ``<sep>Mmm<sep>yyyy hh:mm:ss +zzzz`` (the shape of nearly every Date header, with spaces,
    and of every INTERNALDATE, with dashes); the day, and where those bytes start."""
    cdef Py_ssize_t digits = _digits(s, i, n, 2)
    if digits == 0 or i + digits + 24 > n:
        return False
    day[0] = _number(s, i, digits)
    i += digits
    at[0] = i
    return (s[i] == sep and _letter(s[i + 1]) and _letter(s[i + 2]) and _letter(s[i + 3])
            and s[i + 4] == sep and _digits(s, i + 5, n, 4) == 4 and s[i + 9] == 32
            and _digits(s, i + 10, n, 2) == 2 and s[i + 12] == 58
            and _digits(s, i + 13, n, 2) == 2 and s[i + 15] == 58
            and _digits(s, i + 16, n, 2) == 2 and s[i + 18] == 32
            and (s[i + 19] == 43 or s[i + 19] == 45) and _digits(s, i + 20, n, 4) == 4)


cdef object _clock(const unsigned char *s, Py_ssize_t at, int day):
    """The datetime of a ``_shaped`` date whose 24 bytes start at *at*."""
    return _aware(day, _month(s, at + 1), _number(s, at + 5, 4), _number(s, at + 10, 2),
                  _number(s, at + 13, 2), _number(s, at + 16, 2), s[at + 19],
                  _number(s, at + 20, 2) * 60 + _number(s, at + 22, 2))


def parse_date(value):
    """``parse.parse_date``, compiled for the shape nearly every Date header has, ``[Www, ]d[d]
    Mmm yyyy hh:mm:ss +zzzz`` followed by nothing, white space or a comment; anything else
    goes to the Python code, whose regex reads these the same way."""
    if type(value) is not bytes:
        return _python["parse_date"](value)
    cdef bytes data = <bytes>value
    cdef const unsigned char *s = _at(data)
    cdef Py_ssize_t n = len(data), i = 0, at = 0
    cdef int day = 0
    if n >= 5 and _letter(s[0]) and _letter(s[1]) and _letter(s[2]) and s[3] == 44 \
            and s[4] == 32:
        i = 5
    if not _shaped(s, i, n, 32, &day, &at) or (
            at + 24 < n and not (_space(s[at + 24]) or s[at + 24] == 40)):
        return _python["parse_date"](value)
    return _clock(s, at, day)


def parse_internaldate(value):
    """``parse.parse_internaldate``, compiled for ``[ ]d[d]-Mmm-yyyy hh:mm:ss +zzzz`` (what
    every server sends); anything else goes to the Python code."""
    if type(value) is not bytes:
        return _python["parse_internaldate"](value)
    cdef bytes data = <bytes>value
    cdef const unsigned char *s = _at(data)
    cdef Py_ssize_t n = len(data), at = 0
    cdef int day = 0
    if not _shaped(s, 1 if n and s[0] == 32 else 0, n, 45, &day, &at):
        return _python["parse_internaldate"](value)
    result = _clock(s, at, day)
    if result is None:
        return None
    try:
        return result.astimezone(_python["utc"])
    except OverflowError:  # year 1 with a positive offset
        return None


# -- address headers -------------------------------------------------------------------------

# Every message's addresses are read from its header fields (``parse._header_envelope``): in
# Python, through a regex's token list and the comprehensions over it, 11 us a message of the
# bench's mail; here 3.4. Every index is of a ``str`` held here, checked against its length
# before it is read.


cdef inline bint _special(Py_UCS4 c) noexcept:
    # Where a run of anything else ends (``parse._ADDRESS_TOKEN``'s last branch).
    return c == u'"' or c == u',' or c == u':' or c == u';' or c == u'<' or c == u'('


cdef Py_ssize_t _token_end(str text, Py_ssize_t i, Py_ssize_t n):
    """Where the token of ``parse._address_tokens`` starting at *i* ends: a quoted string (a
    backslash escapes any character; the closing quote optional), a comment with the comments
    nested in it (an unclosed one runs to the end), an angle address, one separator, or a run
    of anything else."""
    cdef Py_UCS4 c = text[i], d
    cdef Py_ssize_t j = i + 1, depth = 1
    if c == u'"':
        while j < n:
            d = text[j]
            if d == u'\\':
                if j + 1 >= n:
                    return j  # a lone last backslash is not escaped: the token ends before it
                j += 2
            elif d == u'"':
                return j + 1
            else:
                j += 1
        return n
    if c == u'(':
        while j < n and depth:
            d = text[j]
            if d == u'\\':
                j += 1
            elif d == u'(':
                depth += 1
            elif d == u')':
                depth -= 1
            j += 1
        return j if j < n else n
    if c == u'<':
        while j < n and text[j] != u'>':
            j += 1
        return j + 1 if j < n else n
    if c == u',' or c == u':' or c == u';':
        return j
    while j < n and not _special(text[j]):
        j += 1
    return j


cdef str _unquote(str word):
    """``parse._unquote``: a quoted word without its quotes and backslashes."""
    word = word.strip()
    if not word.startswith(u'"'):
        return word
    word = word[1:]
    if word.endswith(u'"'):
        word = word[:len(word) - 1]
    if u'\\' not in word:
        return word
    cdef list out = []
    cdef Py_ssize_t i = 0, n = len(word), start = 0
    while i < n - 1:
        if word[i] == u'\\' and word[i + 1] != u'\n':
            out.append(word[start:i])
            out.append(word[i + 1])
            i += 2
            start = i
        else:
            i += 1
    out.append(word[start:])
    return u"".join(out)


cdef void _add_address(str angle, list words, list comments, list result) except *:
    """``parse._add_header_address`` of one address's tokens: *angle* is its last angle
    address (None without one), *words* and *comments* the rest in order."""
    cdef str address, name, piece
    cdef list pieces
    cdef Py_ssize_t at, i
    if angle is not None:
        address = angle[1:]
        if address.endswith(u">"):
            address = address[:len(address) - 1]
        address = address.strip()
        if u":" in address and (address.endswith(u";")
                                 or u"@" not in address.partition(u":")[2]):
            return  # a group inside angle brackets: <Undisclosed-Recipient:@host;>
        address = address.rpartition(u":")[2].strip()  # an obsolete route: <@a,@b:x@y>
        name = u" ".join([_unquote(word) for word in words]).strip()
    else:
        pieces = []
        for word in words:
            if (<str>word).startswith(u'"'):
                pieces.append(word)
            else:
                pieces.extend((<str>word).split())
        at = -1
        for i in range(len(pieces) - 1, -1, -1):
            piece = pieces[i]
            if u"@" in piece and not piece.startswith(u'"'):
                at = i
                break
        if at < 0:
            if len(pieces) == 1 and not (<str>pieces[0]).startswith(u'"'):
                address, name = pieces[0], u""  # a bare local part
            else:
                address, name = u"", u" ".join([_unquote(piece) for piece in pieces])
        else:
            address = pieces[at]
            del pieces[at]
            name = u" ".join([_unquote(piece) for piece in pieces])
    name = name.strip()
    if not name and comments:
        name = u" ".join([comment for comment in comments if comment])
    if address or name:
        result.append(Address(decode_header(name.encode("utf-8")) if name else u"",
                              address.strip()))


def header_addresses(value):
    """``parse.python_header_addresses``, compiled: the addresses of a raw address header,
    split where that function splits it, one token at a time instead of a regex's list."""
    cdef bytes data = value
    if b"\r" in data or b"\n" in data:
        data = _unfold(data)
    cdef str text = _decode_bytes(data)
    cdef Py_ssize_t i = 0, end, n = len(text)
    cdef list result = [], words = [], comments = []
    cdef str angle = None, token
    cdef Py_UCS4 c
    while i < n:
        end = _token_end(text, i, n)
        c = text[i]
        if c == u',' or c == u';' or (c == u':' and angle is None):
            if c != u':':
                _add_address(angle, words, comments, result)
            angle, words, comments = None, [], []  # after ':', a group's name is dropped
        else:
            token = text[i:end]
            if c == u'<':
                angle = token
            elif c == u'(':
                comments.append(token[1:].removesuffix(u")").strip())
            else:
                words.append(token)
        i = end
    _add_address(angle, words, comments, result)
    return result
