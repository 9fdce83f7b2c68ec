# cython: language_level=3, boundscheck=False, wraparound=False
"""A message's FETCH items interpreted, compiled: the same ``(sequence number, items)`` as
``parse``'s Python ``parse_fetch``, the same ``MessageMeta`` as its ``message_meta`` and the
same ``(attachments, text_parts)`` as its ``parse_bodystructure``.

Why: with the tokenizer and the header values in C, interpreting a message's items was still
twice the tokenizing (about 22 us a message against 11 in ``bench/index_stages.py``), in the
thread a first index waits for: its BODYSTRUCTURE alone about 8 us (each node's fields read
through ``_get``, each type lower-cased, its parameters made a dict, a ``Part`` built by
keyword), the rest the envelope's fields as a dict and the glue between the compiled pieces.
Here the walk is typed, the tree's lists are indexed directly, the few type words are
lower-cased once, a ``Part`` is built by position and the envelope's fields (read from the
header fields) go straight into the ``MessageMeta``; and the items of a response (``parse_fetch``: a dict of the tokens, each
name upper-cased and decoded, about 2.5 us a message beside the tokenizer's 8.7) are named
from the few names a session asks for, upper-cased once.

What is not the common case is handed back to Python, not written twice: RFC 2231 parameter
continuations and charsets (``parse._join_rfc2231``), a uuencoded part's type from its name
(``mimetypes``), a subject whose white space Dovecot would change
(``parse.subject_for_humans``), Gmail's labels (modified UTF-7), and every value's decoding
(``decode_header``, ``parse_date``... compiled already in ``_headers`` where it was built);
``bind`` hands them over, with the exception a multipart the server could not split raises,
which ``parse`` owns.

Why it is safe with a server's tree (bounds and negative indexes are not checked here, by the
directives above): every index is of a list this code holds, non-negative, and each is read
only after its length was checked (``_get``, or ``len`` just before); nothing is descended
into deeper than ``parse``'s limit.

The rules are ``parse.py``'s, which stays the reference (and the fallback where this module
was not built); ``tests/mailboxes/test_imap_meta.py`` holds both to the same results over
hand-picked responses, every message of the MIME corpus as Dovecot describes it and random
trees made of the pieces the walk turns on. Built by ``make``.
"""

from .types import Address, MessageMeta, Part

cdef object _decode_header = None  # parse's functions for what is not done here (``bind``)
cdef object _MIME_TOKEN = None  # parse's pattern of an RFC 2045 token
cdef object _decode_bytes = None
cdef object _join_rfc2231 = None
cdef object _guess_type = None
cdef object _Degenerate = None
cdef object _header_fields = None
cdef object _header_addresses = None
cdef object _subject_for_humans = None
cdef object _parse_date = None
cdef object _parse_internaldate = None
cdef object _normalize_message_id = None
cdef object _message_id_list = None
cdef object _labels = None
cdef object _parse_tokens = None
cdef frozenset _UU_ENCODINGS = frozenset()
cdef frozenset _UU_GENERIC_TYPES = frozenset()
cdef Py_ssize_t _MAX_DEPTH = 64


def bind(*, decode_header, decode_bytes, join_rfc2231, guess_type, degenerate, uu_encodings,
         uu_generic_types, max_depth, header_fields, header_addresses, subject_for_humans,
         parse_date, parse_internaldate, normalize_message_id, message_id_list, labels,
         parse_tokens, mime_token):
    """Take what ``parse`` owns (this module cannot import ``parse``, which imports it)."""
    global _decode_header, _decode_bytes, _join_rfc2231, _guess_type, _Degenerate
    global _UU_ENCODINGS, _UU_GENERIC_TYPES, _MAX_DEPTH, _header_fields
    global _parse_date, _parse_internaldate
    global _normalize_message_id, _message_id_list, _labels, _parse_tokens, _header_addresses
    global _subject_for_humans, _MIME_TOKEN
    _decode_header, _decode_bytes, _join_rfc2231 = decode_header, decode_bytes, join_rfc2231
    _guess_type, _Degenerate = guess_type, degenerate
    _UU_ENCODINGS, _UU_GENERIC_TYPES = frozenset(uu_encodings), frozenset(uu_generic_types)
    _MAX_DEPTH = max_depth
    _header_fields = header_fields
    _header_addresses, _subject_for_humans = header_addresses, subject_for_humans
    _parse_date, _parse_internaldate = parse_date, parse_internaldate
    _normalize_message_id, _message_id_list, _labels = (normalize_message_id, message_id_list,
                                                        labels)
    _parse_tokens = parse_tokens
    _MIME_TOKEN = mime_token


# -- a FETCH response's items ----------------------------------------------------------------


cdef dict _ITEM_NAMES = {}  # an item name as read: upper-cased str (``b"uid"`` -> ``"UID"``)
cdef Py_ssize_t _ITEM_NAMES_MAX = 256  # distinct names kept (a session asks for a dozen)


def parse_fetch(text, literals=()):
    """``(sequence number, items)`` of one FETCH response: ``parse.parse_fetch``, its item
    names upper-cased once and remembered (the same dozen come in every response)."""
    seq = None
    body = None
    for element in _parse_tokens(text, literals):
        if isinstance(element, list):
            body = element
            break
        if seq is None and isinstance(element, bytes) and (<bytes>element).isdigit():
            seq = int(element)
    cdef dict items = {}
    cdef list found
    cdef Py_ssize_t index
    if body:
        found = body
        for index in range(0, len(found) - 1, 2):
            key = found[index]
            if isinstance(key, bytes):
                name = _ITEM_NAMES.get(key)
                if name is None:
                    name = (<bytes>key).upper().decode("ascii", "replace")
                    if len(_ITEM_NAMES) < _ITEM_NAMES_MAX and len(<bytes>key) <= 256:
                        _ITEM_NAMES[key] = name
                items[name] = found[index + 1]
    return seq, items


# -- the message -----------------------------------------------------------------------------


def message_meta(items):
    """A ``MessageMeta`` from ``parse_fetch`` items: ``parse.message_meta``."""
    cdef dict found = items if isinstance(items, dict) else dict(items)
    uid = _as_int(found.get("UID"))
    if uid is None:
        return None
    cdef dict headers
    try:
        headers = _header_block(found)
    except Exception:  # a malformed message must not stop an index run
        headers = {}
    cdef tuple envelope
    try:
        envelope = _header_envelope(headers)
    except Exception:
        envelope = (None, "", [], [], [], [], [], [], None, None)
    date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to, message_id = envelope
    structure = found.get("BODYSTRUCTURE", found.get("BODY"))
    try:
        attachments, texts = parse_bodystructure(structure)
    except Exception:
        attachments, texts = [], []
    if in_reply_to is None and "in-reply-to" in headers:
        in_reply_to = _normalize_message_id(headers["in-reply-to"])
    labels = found.get("X-GM-LABELS")
    return MessageMeta(
        uid=uid,
        flags=_flags(found.get("FLAGS")),
        internal_date=_parse_internaldate(found.get("INTERNALDATE")),
        size=_as_int(found.get("RFC822.SIZE")) or 0,
        modseq=_as_int(found.get("MODSEQ")),
        subject=subject,
        from_=from_,
        sender=sender,
        reply_to=reply_to,
        to=to,
        cc=cc,
        bcc=bcc,
        date=date,
        message_id=message_id,
        in_reply_to=in_reply_to,
        references=_message_id_list(headers.get("references")),
        has_attachments=bool(attachments),
        attachments=attachments,
        text_parts=texts,
        email_id=_atom(found.get("EMAILID")),
        thread_id=_atom(found.get("THREADID")),
        gm_msgid=_as_int(found.get("X-GM-MSGID")),
        gm_thrid=_as_int(found.get("X-GM-THRID")),
        labels=() if labels is None else _labels(labels),
    )


cdef dict _header_block(dict items):
    for key, value in items.items():
        if key.startswith("BODY[HEADER"):
            return _header_fields(value)
    return {}


cdef tuple _flags(object value):
    if not isinstance(value, list):
        return ()
    cdef list kept = []
    for flag in <list>value:
        if isinstance(flag, bytes) and (<bytes>flag).lower() != b"\\recent":
            kept.append((<bytes>flag).decode("ascii", "replace"))
    return tuple(kept)


cdef object _atom(object value):
    if isinstance(value, list):
        value = (<list>value)[0] if len(<list>value) else None
    if isinstance(value, bytes) and len(<bytes>value):
        return (<bytes>value).decode("ascii", "replace")
    return None


# -- the envelope ----------------------------------------------------------------------------


cdef tuple _header_envelope(dict headers):
    """``parse._header_envelope`` as a tuple in the ENVELOPE's order: date, subject, from,
    sender, reply-to, to, cc, bcc, in-reply-to, message-id."""
    raw_from = headers.get("from")
    cdef list parsed_from = _header_addresses(raw_from) if raw_from is not None else []
    return (
        _parse_date(headers.get("date")),
        _decode_header(_for_humans(headers.get("subject"))),
        parsed_from,
        _or_from(headers.get("sender"), parsed_from),
        _or_from(headers.get("reply-to"), parsed_from),
        _header_list(headers.get("to")),
        _header_list(headers.get("cc")),
        _header_list(headers.get("bcc")),
        _normalize_message_id(headers.get("in-reply-to")),
        _normalize_message_id(headers.get("message-id")),
    )


cdef inline list _header_list(object value):
    return _header_addresses(value) if value is not None else []


cdef list _or_from(object value, list parsed_from):
    if value is None:
        return [Address(address.name, address.address) for address in parsed_from]
    return _header_addresses(value)


cdef object _for_humans(object value):
    """``parse.subject_for_humans``, which it calls only for a subject it would change."""
    if type(value) is not bytes:
        return _subject_for_humans(value)
    cdef bytes data = <bytes>value
    cdef const unsigned char *s = data
    cdef Py_ssize_t i, n = len(data)
    cdef unsigned char c
    if n == 0:
        return data
    if s[0] == 32 or s[n - 1] == 32:
        return _subject_for_humans(data)
    for i in range(n):
        c = s[i]
        if c == 9 or c == 10 or c == 13 or (c == 32 and i + 1 < n and s[i + 1] == 32):
            return _subject_for_humans(data)
    return data


# -- the body structure ----------------------------------------------------------------------


cdef inline object _get(list node, Py_ssize_t index):
    return node[index] if len(node) > index else None


cdef dict _LOWERED = {}  # a type, subtype, encoding or disposition as read: lower-cased
cdef Py_ssize_t _LOWERED_MAX = 1024  # distinct values kept (a server's are a few dozen)


cdef object _lower(object value):
    """``parse._lower``, remembered: the same few words come in every message."""
    if not isinstance(value, bytes) or not len(<bytes>value):
        return None
    lowered = _LOWERED.get(value)
    if lowered is None:
        if _MIME_TOKEN.fullmatch(value) is None:
            return None
        lowered = (<bytes>value).decode("ascii").lower()
        if len(_LOWERED) < _LOWERED_MAX and len(<bytes>value) <= 64:
            _LOWERED[value] = lowered
    return lowered


cdef object _as_int(object value):
    if isinstance(value, list):
        value = (<list>value)[0] if len(<list>value) else None
    if isinstance(value, bytes) and (<bytes>value).isdigit():
        return int(value)
    return None


def parse_bodystructure(node):
    """``(attachments, text_parts)`` of a BODYSTRUCTURE: ``parse.parse_bodystructure``."""
    cdef list attachments = []
    cdef list texts = []
    if isinstance(node, list) and len(<list>node):
        if isinstance((<list>node)[0], list):
            try:
                _walk_multipart(<list>node, "", attachments, texts, 0, False)
            except _Degenerate as exc:
                texts = [Part("", f"multipart/{exc.args[0]}", 0)]
        else:
            _leaf(<list>node, "1", attachments, texts, False)
    return attachments, texts


cdef _walk_multipart(list node, str prefix, list attachments, list texts, Py_ssize_t depth,
                     bint related):
    cdef Py_ssize_t position = len(node), index, number = 0
    cdef object child
    if depth > _MAX_DEPTH:
        return
    for index in range(len(node)):
        if not isinstance(node[index], list):
            position = index
            break
    subtype = _lower(_get(node, position)) or "mixed"
    if _unsplit(node, position):
        raise _Degenerate(subtype)
    related = related or subtype == "related"
    for child in node:
        if not isinstance(child, list):
            break  # the multipart subtype follows the parts
        number += 1
        if not len(<list>child):
            continue
        if isinstance((<list>child)[0], list):
            _walk_multipart(<list>child, f"{prefix}{number}.", attachments, texts, depth + 1,
                            related)
        else:
            _leaf(<list>child, f"{prefix}{number}", attachments, texts, related)


cdef bint _unsplit(list node, Py_ssize_t position) except -1:
    params = _get(node, position + 1)
    if position != 1 or not isinstance(params, list) or not isinstance(node[0], list):
        return False
    keys = {key.lower() for key in (<list>params)[::2] if isinstance(key, bytes)}
    cdef list child = node[0]
    return b"boundary" not in keys and not isinstance(_get(child, 0), list) and (
        _as_int(_get(child, 6)) == 0)


cdef _leaf(list node, str number, list attachments, list texts, bint related):
    main = _lower(node[0]) or "application"
    subtype = _lower(_get(node, 1)) or ("plain" if main == "text" else "octet-stream")
    cdef str content_type = f"{main}/{subtype}"
    cdef dict params = _params(_get(node, 2))
    cdef Py_ssize_t extension
    if main == "message" and isinstance(_get(node, 7), list):
        extension = 10
    elif main == "text":
        extension = 8
    else:
        extension = 7
    disposition, disposition_params = _disposition(_get(node, extension + 1))
    filename = (<dict>disposition_params).get("filename") or params.get("name") or None
    encoding = _lower(_get(node, 5))
    cdef bint uuencoded = encoding in _UU_ENCODINGS
    if uuencoded and content_type in _UU_GENERIC_TYPES and filename:
        content_type = _guess_type(filename, strict=False)[0] or content_type
    size = _as_int(_get(node, 6)) or 0
    content_id = _content_id(_get(node, 3))
    charset = params.get("charset")
    charset = (charset or "").lower() or None
    method = None
    if content_type == "text/calendar":
        method = (params.get("method") or "").strip().upper() or None
    part = Part(number, content_type, size, filename, content_id, disposition, encoding,
                charset, related, method)
    if (content_type == "text/plain" or content_type == "text/html") and (
            disposition != "attachment" and not uuencoded):
        texts.append(part)
        return
    if disposition is None and content_id:
        part.disposition = "inline"
    attachments.append(part)


cdef object _content_id(object value):
    if not isinstance(value, bytes):
        return None
    cdef str text = _decode_bytes(value).strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    return text or None


cdef tuple _disposition(object value):
    if isinstance(value, list) and len(<list>value):
        return _lower((<list>value)[0]), _params(_get(<list>value, 1))
    return _lower(value), {}


cdef dict _params(object value):
    if not isinstance(value, list):
        return {}
    cdef list items = value
    cdef dict result = {}
    cdef dict extended = None
    cdef Py_ssize_t index
    cdef str name, section
    for index in range(0, len(items) - 1, 2):
        key, raw = items[index], items[index + 1]
        if not isinstance(key, bytes) or not isinstance(raw, bytes):
            continue
        name, star, section = (<bytes>key).decode("ascii", "replace").lower().partition("*")
        if star:
            position = section.rstrip("*")
            encoded = section.endswith("*") or not section
            entry = (int(position) if position.isdigit() else 0, encoded, raw)
            if extended is None:
                extended = {}
            extended.setdefault(name, []).append(entry)
        elif name not in result:
            result[name] = _decode_header(raw)
    if extended is not None:
        for name, segments in extended.items():
            result[name] = _join_rfc2231(segments)
    return result
