# cython: language_level=3, boundscheck=False, wraparound=False
"""A new message's COPY line written straight from its ``MessageMeta``, in C: the bytes
``copy_text.row(index._row_values(...))`` gives for the same message, without the row's dict,
its address and part dicts and their freeing (about 12 us of 17 a message in a first index).

Why a second writer: after parsing and COPY text were compiled, building each history row's
values in Python was the largest cost of a first index left in the writing thread. The rules
stay where they are: ``index._row_values`` and ``message_fields.stored_values`` are the
reference (new mail, whose events need the values, and any row this module declines go
through them), ``index`` computes the row's ids (``threads``) and passes them in, and every
value is written by ``emailapi/lib/_copy_text.pyx``'s own writers. What this module owns is
only which attribute of the message fills which column, and the shape of an address and of a
part in JSON; ``tests/mailboxes/test_row_lines.py`` holds it to the reference's bytes over the
message corpus and random messages.

``plan(names)`` gives the column codes of a COPY column list (``None`` for a column this
module does not know: the reference is used for every row); ``line`` returns ``None`` for a
row with a value the writers leave to psycopg (``copy_text``'s rules). Built by ``make``.
"""

from cpython.mem cimport PyMem_Free

from emailapi.lib._copy_text cimport Buffer, _byte, _empty, _json, _line, _put, _value

from emailapi.lib._copy_text import _Unsupported

cdef enum Column:
    ACCOUNT
    FOLDER
    UID
    FLAGS
    LABELS
    MODSEQ
    INTERNAL_DATE
    SIZE
    SUBJECT
    FROM_ADDRESS
    SENDER
    REPLY_TO
    TO
    CC
    BCC
    DATE
    MESSAGE_ID
    IN_REPLY_TO
    REFERENCES
    HAS_ATTACHMENTS
    ATTACHMENTS
    TEXT_PARTS
    FROM_TEXT
    TO_TEXT
    CC_TEXT
    BCC_TEXT
    EMAIL_ID
    THREAD_ID
    INDEXED_AT

COLUMNS = {
    "email_account_id": ACCOUNT, "folder_id": FOLDER, "uid": UID, "flags": FLAGS,
    "labels": LABELS, "modseq": MODSEQ, "internal_date": INTERNAL_DATE, "size": SIZE,
    "subject": SUBJECT, "from_address": FROM_ADDRESS, "sender": SENDER, "reply_to": REPLY_TO,
    "to": TO, "cc": CC, "bcc": BCC, "date": DATE, "message_id": MESSAGE_ID,
    "in_reply_to": IN_REPLY_TO, "references": REFERENCES, "has_attachments": HAS_ATTACHMENTS,
    "attachments": ATTACHMENTS, "text_parts": TEXT_PARTS, "from_text": FROM_TEXT,
    "to_text": TO_TEXT, "cc_text": CC_TEXT, "bcc_text": BCC_TEXT, "email_id": EMAIL_ID,
    "thread_id": THREAD_ID, "indexed_at": INDEXED_AT,
}

# The longest message id and search text a row keeps (``message_fields``, ``index``).
cdef Py_ssize_t MESSAGE_ID_LIMIT = 998
cdef Py_ssize_t SEARCH_TEXT_LIMIT = 4000


def plan(tuple names):
    """The column codes of *names* (COPY's column order), or ``None`` unless every column
    is one this module writes and every one it writes is there."""
    if len(names) != len(COLUMNS) or set(names) != set(COLUMNS):
        return None
    return tuple(COLUMNS[name] for name in names)


# An address's and a part's JSON objects: each key (as the reference's dicts have them, in
# their order) and the attribute its value is read from (``Address.as_dict``, ``index._part``).
cdef tuple _ADDRESS_KEYS = ((b'{"name":', "name"), (b',"address":', "address"))
cdef tuple _PART_KEYS = (
    (b'{"part":', "part"), (b',"contentType":', "content_type"), (b',"size":', "size"),
    (b',"filename":', "filename"), (b',"contentId":', "content_id"),
    (b',"disposition":', "disposition"), (b',"encoding":', "encoding"),
    (b',"charset":', "charset"), (b',"embedded":', "embedded"),
)


cdef int _object(Buffer *out, object item, tuple keys) except -1:
    """The JSON object of *item*'s attributes under *keys*, left open (no closing brace)."""
    cdef bytes key
    for key, attribute in keys:
        _put(out, key, len(key))
        _json(out, getattr(item, attribute), 2)
    return 0


cdef int _address(Buffer *out, object address) except -1:
    """``Address.as_dict()`` as JSON."""
    _object(out, address, _ADDRESS_KEYS)
    _byte(out, 125)
    return 0


ctypedef int (*Writer)(Buffer *out, object item) except -1


cdef int _list(Buffer *out, object items, Writer write) except -1:
    """A JSON array of *items* (a list, as the parser makes them), each written by *write*."""
    cdef Py_ssize_t i
    if type(items) is not list:
        raise _Unsupported()
    _byte(out, 91)
    for i in range(len(<list>items)):
        if i:
            _byte(out, 44)
        write(out, (<list>items)[i])
    _byte(out, 93)
    return 0


cdef int _first_address(Buffer *out, object addresses) except -1:
    if type(addresses) is not list:
        raise _Unsupported()
    if not addresses:
        _put(out, b"\\N", 2)
    else:
        _address(out, (<list>addresses)[0])
    return 0


cdef int _part(Buffer *out, object part) except -1:
    """``index._part(part)`` as JSON: ``method`` only where the part has one."""
    _object(out, part, _PART_KEYS)
    method = part.method
    if method:
        _put(out, b',"method":', 10)
        _json(out, method, 2)
    _byte(out, 125)
    return 0


cdef str _search_text(list addresses):
    """``index._search_text``: each address's lower-cased ``name <address>`` once."""
    if not addresses:
        return ""
    cdef dict seen = {}
    for address in addresses:
        seen[f"{address.name} <{address.address}>".lower()] = None
    return ", ".join(seen)[:SEARCH_TEXT_LIMIT]


cdef int _column(Buffer *out, int code, object meta, object account_id, object folder_id,
                 object email_id, object thread_id, object indexed_at) except -1:
    if code == ACCOUNT:
        _value(out, account_id, False)
    elif code == FOLDER:
        _value(out, folder_id, False)
    elif code == UID:
        _value(out, meta.uid, False)
    elif code == FLAGS:
        _json(out, meta.flags, 0)
    elif code == LABELS:
        _json(out, meta.labels, 0)
    elif code == MODSEQ:
        _value(out, meta.modseq, False)
    elif code == INTERNAL_DATE:
        _value(out, meta.internal_date, False)
    elif code == SIZE:
        _value(out, meta.size, False)
    elif code == SUBJECT:
        _value(out, meta.subject, False)
    elif code == FROM_ADDRESS:
        _first_address(out, meta.from_)
    elif code == SENDER:
        _first_address(out, meta.sender)
    elif code == REPLY_TO:
        _list(out, meta.reply_to, _address)
    elif code == TO:
        _list(out, meta.to, _address)
    elif code == CC:
        _list(out, meta.cc, _address)
    elif code == BCC:
        _list(out, meta.bcc, _address)
    elif code == DATE:
        _value(out, meta.date, False)
    elif code == MESSAGE_ID:
        _value(out, (meta.message_id or "")[:MESSAGE_ID_LIMIT], False)
    elif code == IN_REPLY_TO:
        _value(out, (meta.in_reply_to or "")[:MESSAGE_ID_LIMIT], False)
    elif code == REFERENCES:
        _json(out, meta.references, 0)
    elif code == HAS_ATTACHMENTS:
        _value(out, meta.has_attachments, False)
    elif code == ATTACHMENTS:
        _list(out, meta.attachments, _part)
    elif code == TEXT_PARTS:
        _list(out, meta.text_parts, _part)
    elif code == FROM_TEXT:
        _value(out, _search_text(meta.from_ + meta.sender), False)
    elif code == TO_TEXT:
        _value(out, _search_text(meta.to), False)
    elif code == CC_TEXT:
        _value(out, _search_text(meta.cc), False)
    elif code == BCC_TEXT:
        _value(out, _search_text(meta.bcc), False)
    elif code == EMAIL_ID:
        _value(out, email_id, False)
    elif code == THREAD_ID:
        _value(out, thread_id, False)
    elif code == INDEXED_AT:
        _value(out, indexed_at, False)
    else:
        raise _Unsupported()
    return 0


def line(tuple codes, meta, account_id, folder_id, email_id, thread_id, indexed_at):
    """The COPY line (with its newline) of a new row for *meta* in the columns *codes*
    (``plan``), its ids given; ``None`` where the reference must write it."""
    cdef Buffer out = _empty()
    cdef Py_ssize_t i, n = len(codes)
    try:
        for i in range(n):
            if i:
                _byte(&out, 9)
            _column(&out, codes[i], meta, account_id, folder_id, email_id, thread_id,
                    indexed_at)
        return _line(&out)
    except (_Unsupported, TypeError, AttributeError):
        return None
    finally:
        PyMem_Free(out.data)
