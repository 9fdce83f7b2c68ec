# cython: language_level=3, boundscheck=True, wraparound=False, initializedcheck=False
"""``parse_tokens`` compiled: the same tokens and nesting as ``parse.python_parse_tokens``.

Why: tokenising FETCH answers was about a quarter of a first index's Python time (a regex
``findall`` plus a Python loop per token, ~60 us per message), and the index runs under one GIL.
Here one pass over the bytes finds each token and builds the nested lists, in C.

Why it is safe with a server's bytes: the text is read through a bounds-checked memoryview
(``boundscheck=True``: an index past the end raises ``IndexError``, never reads memory), every
token is a slice of the original ``bytes``, and nothing is written but Python lists.

The rules are the regex's in ``parse.py``, which stays the reference (and the fallback where
this module was not built); ``tests/mailboxes/test_imap_tokens.py`` holds both to the same
output over captured answers and random text. Built by ``make`` (``cythonize -i``).
"""

cdef inline bint _space(unsigned char c) noexcept:
    # The bytes regex's \s: space, \t \n \v \f \r.
    return c == 32 or (9 <= c <= 13)


cdef inline bint _plain(unsigned char c) noexcept:
    # A character an atom may hold outside [...]: not \s ( ) " { [
    return not (_space(c) or c == 40 or c == 41 or c == 34 or c == 123 or c == 91)


cdef Py_ssize_t _bracket_end(const unsigned char[::1] s, Py_ssize_t i, Py_ssize_t n):
    """Just past the ``]`` closing the ``[`` at *i*, or -1 (a CR, an LF or the end first)."""
    cdef Py_ssize_t j = i + 1
    cdef unsigned char c
    while j < n:
        c = s[j]
        if c == 93:
            return j + 1
        if c == 13 or c == 10:
            return -1
        j += 1
    return -1


cdef Py_ssize_t _atom_end(const unsigned char[::1] s, Py_ssize_t i, Py_ssize_t n):
    """End of an atom starting at *i* (plain characters and closed ``[...]`` sections), or -1."""
    cdef Py_ssize_t j, k
    if s[i] == 91:
        j = _bracket_end(s, i, n)
        if j < 0:
            return -1
    elif _plain(s[i]):
        j = i + 1
    else:
        return -1
    while True:
        while j < n and _plain(s[j]):
            j += 1
        if j < n and s[j] == 91:
            k = _bracket_end(s, j, n)
            if k < 0:
                return j
            j = k
        else:
            return j


cdef Py_ssize_t _quoted_end(const unsigned char[::1] s, Py_ssize_t i, Py_ssize_t n):
    """Just past the ``"`` closing the quoted string at *i*, or -1 (unterminated)."""
    cdef Py_ssize_t j = i + 1
    cdef unsigned char c
    while j < n:
        c = s[j]
        if c == 34:
            return j + 1
        if c == 92:
            if j + 1 >= n:
                return -1
            j += 2
        else:
            j += 1
    return -1


cdef Py_ssize_t _literal_end(const unsigned char[::1] s, Py_ssize_t i, Py_ssize_t n):
    """Just past a literal marker ``{n}``, ``{n+}`` or ``~{n}`` at *i*, or -1."""
    cdef Py_ssize_t j = i
    cdef Py_ssize_t digits
    if s[j] == 126:
        j += 1
    if j >= n or s[j] != 123:
        return -1
    j += 1
    digits = j
    while j < n and 48 <= s[j] <= 57:
        j += 1
    if j == digits:
        return -1
    if j < n and s[j] == 43:
        j += 1
    if j < n and s[j] == 125:
        return j + 1
    return -1


cdef bytes _unescape(bytes token):
    """A quoted string's content with ``\\x`` read as ``x``."""
    cdef bytearray out = bytearray()
    cdef Py_ssize_t n = len(token)
    cdef Py_ssize_t j = 0
    cdef Py_ssize_t run = 0
    cdef const unsigned char[::1] s = token
    while j < n:
        if s[j] == 92 and j + 1 < n:
            out += token[run:j]
            out += token[j + 1:j + 2]
            j += 2
            run = j
        else:
            j += 1
    out += token[run:n]
    return bytes(out)


def parse_tokens(text, literals=()):
    """Parse IMAP response text into nested lists, as ``parse.python_parse_tokens`` does."""
    if type(text) is not bytes:
        text = bytes(text)
    cdef bytes data = text
    cdef const unsigned char[::1] s = data
    cdef Py_ssize_t n = len(data)
    cdef Py_ssize_t i = 0
    cdef Py_ssize_t end
    cdef unsigned char c
    cdef bytes token
    cdef list root = []
    cdef list current = root
    cdef list stack = []
    cdef list child
    pending = iter(literals)
    while i < n:
        c = s[i]
        if _space(c):
            i += 1
        elif c == 40:
            child = []
            current.append(child)
            stack.append(current)
            current = child
            i += 1
        elif c == 41:
            if stack:
                current = stack.pop()
            i += 1
        elif c == 34:
            end = _quoted_end(s, i, n)
            if end < 0:
                i += 1  # an unterminated quote starts no token
                continue
            token = data[i + 1:end - 1]
            current.append(_unescape(token) if b"\\" in token else token)
            i = end
        elif c == 123 or (c == 126 and i + 1 < n and s[i + 1] == 123):
            end = _literal_end(s, i, n)
            if end >= 0:
                current.append(next(pending, b""))
                i = end
            elif c == 126:
                # "~{" that is no marker: "~" alone is an atom ("{" ends it)
                current.append(data[i:i + 1])
                i += 1
            else:
                i += 1  # a "{" that is no marker starts no token
        else:
            end = _atom_end(s, i, n)
            if end < 0:
                i += 1  # "[" with no "]" before the line's end starts no token
                continue
            if end - i == 3 and s[i] == 78 and s[i + 1] == 73 and s[i + 2] == 76:
                current.append(None)
            else:
                current.append(data[i:end])
            i = end
    return root
