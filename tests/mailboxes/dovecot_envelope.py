"""The server's ENVELOPE read as the engine read it before its envelope came from the header
fields: the baseline ``test_imap_envelope_headers`` holds the header reading to.

Why here and not in ``mailboxes.imap.parse``: the engine no longer asks for an ENVELOPE (it
costs Dovecot about 11 % of its CPU for the engine's FETCH, and the server's parser loses or
mangles some addresses), so the reading is kept only as the record of what clients were given
before: each address list the ENVELOPE's, unless it is suspect (a placeholder for a missing
mailbox or domain, or fewer addresses with a domain than the header has ``@``s), where the
address header is read instead, each address taking the ENVELOPE's entry for the same address.
"""

from __future__ import annotations

from typing import Any

import imapclient

from mailboxes.imap import parse, underlying
from mailboxes.imap.types import Address

# The items the engine asked for before: the ENVELOPE, and the address headers read where it
# is suspect, with References (not in an ENVELOPE).
ITEMS = "UID ENVELOPE BODY.PEEK[HEADER.FIELDS (REFERENCES FROM SENDER REPLY-TO TO CC BCC)]"

# Placeholders servers put in an ENVELOPE for an address without a domain / local part
# (Dovecot: MISSING_DOMAIN, MISSING_MAILBOX, SYNTAX_ERROR for one it could not parse; UW and
# Cyrus: .MISSING-HOST-NAME.).
MISSING_HOSTS = {b".MISSING-HOST-NAME.", b"MISSING_DOMAIN", b"SYNTAX_ERROR"}
MISSING_MAILBOX = b"MISSING_MAILBOX"


def fetch_enveloped(client: imapclient.IMAPClient, uid_set: str = "1:*") -> dict[int, dict[str, Any]]:
    """UID → the envelope's fields (``MessageMeta``'s names) as the ENVELOPE gave them."""
    status, data = underlying.connection(client).uid("FETCH", uid_set, f"({ITEMS})")
    assert status == "OK", data
    found = {}
    for text, literals in parse.imaplib_responses(data):
        _, items = parse.parse_fetch(text, literals)
        headers = next((parse.python_header_fields(value) for key, value in items.items()
                        if key.startswith("BODY[HEADER")), {})
        fields = envelope_fields(items["ENVELOPE"], headers)
        fields["references"] = parse.message_id_list(headers.get("references"))
        found[parse.as_int(items["UID"])] = fields
    return found


def envelope_fields(envelope: list[Any], headers: dict[str, bytes]) -> dict[str, Any]:
    """An ENVELOPE's fields, with *headers* (lower-case name → raw value) read where its
    addresses are suspect."""
    date, subject, from_, sender, reply_to, to, cc, bcc, in_reply_to, message_id = (
        envelope + [None] * 10)[:10]
    parsed_from = _addresses_of(from_, headers.get("from"))
    return {
        "date": parse.parse_date(date),
        "subject": parse.decode_header(subject),
        "from_": parsed_from,
        "sender": _same_addresses(sender, from_, parsed_from, headers.get("sender")),
        "reply_to": _same_addresses(reply_to, from_, parsed_from, headers.get("reply-to")),
        "to": _addresses_of(to, headers.get("to")),
        "cc": _addresses_of(cc, headers.get("cc")),
        "bcc": _addresses_of(bcc, headers.get("bcc")),
        "in_reply_to": parse.normalize_message_id(in_reply_to),
        "message_id": parse.normalize_message_id(message_id),
    }


def envelope_addresses(value: Any) -> list[Address]:
    """An ENVELOPE address list; RFC 2822 group start/end markers are skipped."""
    result = []
    for entry in value if isinstance(value, list) else ():
        if not isinstance(entry, list) or len(entry) != 4:
            continue
        name, _route, mailbox, host = entry
        if mailbox.__class__ is not bytes or host.__class__ is not bytes:
            continue  # host NIL marks a group: start (mailbox = group name) or end
        if mailbox == MISSING_MAILBOX:
            mailbox = b""
        address = mailbox if host in MISSING_HOSTS or not mailbox else mailbox + b"@" + host
        if address or name:
            result.append(Address(parse.decode_header(name) if name else "",
                                  parse.decode_bytes(address)))
    return result


def suspect(value: Any, header: bytes) -> bool:
    """The ENVELOPE list may have lost or mangled addresses of *header*: it holds a
    placeholder, or it has not as many addresses with a domain as the header has ``@``s
    (``Mikel@Lindsaar <a@b>, c@d`` reads as one address ``Mikel@Lindsaar``)."""
    found = 0
    for entry in value if isinstance(value, list) else ():
        if isinstance(entry, list) and len(entry) == 4 and entry[3].__class__ is bytes:
            if entry[2] == MISSING_MAILBOX or entry[3] in MISSING_HOSTS:
                return True
            found += 1
    return found != header.count(b"@")


def _addresses_of(value: Any, header: bytes | None) -> list[Address]:
    parsed = envelope_addresses(value)
    if header is None or not suspect(value, header):
        return parsed
    known = {address.address.lower(): address for address in parsed if address.address}
    return [known.get(address.address.lower(), address)
            for address in parse.header_addresses(header)]


def _same_addresses(raw: Any, raw_from: Any, parsed_from: list[Address],
                    header: bytes | None) -> list[Address]:
    """Sender and Reply-To usually repeat From (servers copy it when absent)."""
    if raw == raw_from and header is None:
        return list(parsed_from)
    return _addresses_of(raw, header)
