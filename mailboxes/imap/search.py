"""Search criteria (EmailEngine's names, a plain dict) compiled into ``UID SEARCH`` and run.

Two steps, so the dangerous one can be tested without a server::

    compile_search({"from": "anna", "or": [{"seen": False}, {"flagged": True}]})
        -> ["FROM", String(b"anna"), "OR", "UNSEEN", "FLAGGED"]
    uid_search(client, criteria) -> [3, 7, 12]

Every value that came from a user travels as a ``String``; every ``str`` in the compiled list is
syntax this module produced itself (keywords, numbers, dates, parentheses) or a value checked
against its IMAP grammar (UID sets, flag keywords). Only ``wire_chunks`` decides how a ``String``
goes on the wire:

* a *quoted string* when it is at most 1000 bytes of printable ASCII without ``"`` and ``\\``
  (inside the quotes, ``( ) { } * %`` are plain characters). No escaping: some servers get
  escapes wrong, and a literal is always right;
* otherwise an IMAP *literal* (``{n}`` + CRLF + n raw bytes), which the server counts rather
  than parses, so CR, LF, quotes, backslashes and 8-bit bytes inside it are plain data.
  It is non-synchronizing (``{n+}``) with LITERAL+ (and up to 4096 bytes with LITERAL-);
  otherwise the client waits for the server's ``+`` continuation before sending the bytes.

NUL cannot be sent in IMAP at all, so a value containing it is refused (``InvalidSearch``), as
is anything else the grammar cannot carry. Values are UTF-8; when one is not ASCII the command
says ``CHARSET UTF-8`` (RFC 3501), unless UTF8=ACCEPT is enabled on the connection, where
RFC 6855 forbids a charset. A server without UTF-8 search answers ``NO [BADCHARSET]``.

Dates (``since``/``before`` on INTERNALDATE, ``sentSince``/``sentBefore`` on the Date header)
are day-precise in IMAP: a date-time is first converted to UTC and then cut to its date.

A few criteria depend on what the server offers (its *capabilities*):

* ``emailId`` / ``threadId``: ``EMAILID`` / ``THREADID`` with OBJECTID (RFC 8474),
  ``X-GM-MSGID`` / ``X-GM-THRID`` on Gmail (X-GM-EXT-1); on any other server the ids are ours
  (a fingerprint, a computed thread), so the caller's *resolve* callback turns them into the
  UIDs the index holds for them in this folder, sent as ``UID <set>``. An id no server could
  hold matches nothing (``NOT ALL``) rather than being an error, as an unknown id would.
* ``gmailRaw``: Gmail's own search syntax as ``X-GM-RAW``; refused on servers without
  X-GM-EXT-1 (it means nothing there).
* ``labels``: ``{"has": [...], "not": [...]}`` as ``X-GM-LABELS`` (each label in modified
  UTF-7, as Gmail spells them); refused on servers without X-GM-EXT-1.
* ``modseq``: ``MODSEQ n`` (RFC 7162: mod-sequence at least n); refused without CONDSTORE.

``capabilities=None`` (the API's validation, before any server is known) checks the values
only, as if every extension were there.

No Django here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import imapclient
from imapclient import imap_utf7

from . import fetch, parse, underlying

__all__ = [
    "Arg",
    "InvalidSearch",
    "MissingExtension",
    "String",
    "compile_search",
    "needs_charset",
    "uid_search",
    "wire_chunks",
    "check_uid_set",
    "check_seq_set",
    "check_keyword",
    "check_header_name",
    "to_date",
    "imap_date",
]

# Limits. A value's UTF-8 size is capped so a search stays a search (the API allows 4096
# characters, which is at most this). Servers cap a command's size, literals included:
# Dovecot's imap_max_line_length is 64 KiB, and it answers a longer one with BYE, dropping the
# connection. So the user-supplied bytes of one search (values, UID sets, keywords, header
# names) stay under 48 KiB, leaving room for the syntax of MAX_TERMS keys. The nesting is
# capped so compiling cannot recurse without end.
MAX_VALUE_BYTES = 16 * 1024
MAX_TOTAL_BYTES = 48 * 1024
MAX_TERMS = 200  # search keys in the whole request (each OR / NOT counts as one)
MAX_DEPTH = 8  # levels of or / not
MAX_OR_ITEMS = 50
MAX_HEADERS = 20
MAX_UID_SET = 8192  # characters
MAX_ATOM = 200  # keyword and header-name length
MAX_NUMBER = 2**32 - 1  # IMAP numbers are unsigned 32-bit
MAX_MODSEQ = 2**63 - 1  # RFC 7162 mod-sequence-value
MAX_ID = 256  # emailId / threadId characters (EmailEngine's limit)
MAX_GMAIL_RAW = 1024  # gmailRaw characters (EmailEngine's limit)
MAX_LABEL = 225  # a Gmail label's characters
MAX_LABELS = 50  # labels in one criterion
MAX_QUOTED = 1000  # longer strings go as literals, keeping the command line short
LITERAL_MINUS_MAX = 4096  # RFC 7888: the largest non-synchronizing literal under LITERAL-


class InvalidSearch(ValueError):
    """A criterion that cannot be searched for; *path* names it as the API does (``or.1.subject``)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class MissingExtension(InvalidSearch):
    """A valid criterion this server cannot search for: it lacks *extension*."""

    def __init__(self, path: str, message: str, extension: str):
        super().__init__(path, message)
        self.extension = extension


@dataclass(frozen=True, slots=True)
class String:
    """A user-supplied value: sent quoted when that is safe, else as a literal."""

    data: bytes

    @property
    def quotable(self) -> bool:
        return len(self.data) <= MAX_QUOTED and _QUOTABLE.match(self.data) is not None

    @property
    def ascii(self) -> bool:
        return self.data.isascii()


# A compiled argument: syntax (str) or a user value (String).
Arg = str | String

_QUOTABLE = re.compile(rb'[\x20\x21\x23-\x5b\x5d-\x7e]*\Z')  # printable ASCII minus " and \
# What a syntax token may look like on the wire: printable, no space, no quote, backslash or
# brace (so no str can ever open a quoted string or announce a literal).
_SYNTAX = re.compile(r'[\x21\x23-\x5b\x5d-\x7a\x7c\x7e]+\Z')
_NZ = r"[1-9][0-9]*"
_SEQ = rf"(?:{_NZ}|\*)"
_UID_SET = re.compile(rf"{_SEQ}(?::{_SEQ})?(?:,{_SEQ}(?::{_SEQ})?)*\Z")
# RFC 3501 atom: printable ASCII minus atom-specials ( ) { SP CTL % * " \ ] - and minus "}",
# which the grammar allows but no real keyword uses.
_ATOM = re.compile(r"[\x21\x23\x24\x26-\x27\x2b-\x5b\x5e-\x7a\x7c\x7e]+\Z")
# RFC 5322 field-name: printable ASCII minus the colon
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+\Z")
_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?\Z"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# -- compiling -------------------------------------------------------------------------------


# ``resolve("emailId" | "threadId", value)``: the UIDs the index holds for that id in the
# folder searched (for servers that cannot search by the ids themselves).
Resolve = Callable[[str, str], Sequence[int]]


def compile_search(criteria: Mapping[str, Any], capabilities: Collection[str] | None = None,
                   resolve: Resolve | None = None) -> list[Arg]:
    """The search keys for *criteria*; ``["ALL"]`` for an empty search.

    Criteria at one level are ANDed; keys come out in a fixed order whatever the order of the
    dict, so one search is always one command. Raises ``InvalidSearch`` for anything that is
    not a valid criterion, whatever validated it before, or that the server (upper-case
    *capabilities*; ``None``: not known yet, check values only) cannot search for.
    """
    budget = _Budget(capabilities, resolve)
    keys = _compile(criteria, "", 0, budget)
    return _flatten(keys) if keys else ["ALL"]


def needs_charset(args: Sequence[Arg]) -> bool:
    """True when a value is not ASCII, so the command must say ``CHARSET UTF-8``."""
    return any(isinstance(arg, String) and not arg.ascii for arg in args)


Key = list[Arg]  # one search-key: "SEEN", ["SUBJECT", String], ["OR", ..., ...]


class _Budget:
    """Counts keys and user-supplied bytes across the whole search."""

    def __init__(self, capabilities: Collection[str] | None = None,
                 resolve: Resolve | None = None) -> None:
        self.terms = 0
        self.bytes = 0
        self.capabilities = None if capabilities is None else frozenset(capabilities)
        self.resolve = resolve

    def offers(self, capability: str) -> bool:
        """Whether the server has *capability* (anything, while the server is unknown)."""
        return self.capabilities is None or capability in self.capabilities

    def term(self, path: str) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise InvalidSearch(path, f"The search has more than {MAX_TERMS} criteria")

    def spend(self, path: str, size: int) -> None:
        self.bytes += size
        if self.bytes > MAX_TOTAL_BYTES:
            raise InvalidSearch(
                path, f"The search values add up to more than {MAX_TOTAL_BYTES} bytes")


def _compile(criteria: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
    if not isinstance(criteria, Mapping):
        raise InvalidSearch(path, "Must be an object")
    for name in criteria:
        if name not in _CRITERIA:
            raise InvalidSearch(_join(path, str(name)), "Unknown search criterion")
    keys: list[Key] = []
    for name, compile_one in _CRITERIA.items():
        if name in criteria:
            keys.extend(compile_one(criteria[name], _join(path, name), depth, budget))
    return keys


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _flatten(keys: list[Key]) -> list[Arg]:
    return [arg for key in keys for arg in key]


def _operand(keys: list[Key]) -> Key:
    """Several keys as one (for OR / NOT): parenthesised; none means ALL."""
    if not keys:
        return ["ALL"]
    if len(keys) == 1:
        return keys[0]
    return ["(", *_flatten(keys), ")"]


def _string(value: Any, path: str, budget: _Budget) -> String:
    if not isinstance(value, str):
        raise InvalidSearch(path, "Must be a string")
    if "\x00" in value:
        raise InvalidSearch(path, "NUL characters cannot be searched for")
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidSearch(path, "Must be valid Unicode text") from None
    if len(data) > MAX_VALUE_BYTES:
        raise InvalidSearch(path, f"Longer than {MAX_VALUE_BYTES} bytes of UTF-8")
    budget.spend(path, len(data))
    return String(data)


def _text(key: str) -> Callable[..., list[Key]]:
    def compile_text(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
        budget.term(path)
        return [[key, _string(value, path, budget)]]

    return compile_text


def _flag(when_true: str, when_false: str) -> Callable[..., list[Key]]:
    def compile_flag(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
        if not isinstance(value, bool):
            raise InvalidSearch(path, "Must be a boolean")
        budget.term(path)
        return [[when_true if value else when_false]]

    return compile_flag


def _date(key: str) -> Callable[..., list[Key]]:
    def compile_date(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
        try:
            day = to_date(value)
        except ValueError as exc:
            raise InvalidSearch(path, str(exc)) from None
        budget.term(path)
        return [[key, imap_date(day)]]

    return compile_date


def _number(key: str) -> Callable[..., list[Key]]:
    def compile_number(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSearch(path, "Must be an integer")
        if not 0 <= value <= MAX_NUMBER:
            raise InvalidSearch(path, f"Must be between 0 and {MAX_NUMBER}")
        budget.term(path)
        return [[key, str(value)]]

    return compile_number


def _number_set(check: Callable[[Any], str], key: Callable[[str], list]):
    """A criterion whose value is a set of numbers (``1:5,7``), checked by ``check`` and sent
    as ``key(set)``."""
    def compile_set(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
        try:
            number_set = check(value)
        except ValueError as exc:
            raise InvalidSearch(path, str(exc)) from None
        budget.term(path)
        budget.spend(path, len(number_set))
        return [key(number_set)]

    return compile_set


# (Lambdas: the checkers are defined further down, with the other public checks.)
_uid = _number_set(lambda value: check_uid_set(value), lambda uid_set: ["UID", uid_set])
# A message sequence set is a search key by itself (RFC 3501 ``sequence-set``); the numbers
# are the selected folder's at the moment of the search.
_seq = _number_set(lambda value: check_seq_set(value), lambda seq_set: [seq_set])


def _modseq(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSearch(path, "Must be an integer")
    if not 0 <= value <= MAX_MODSEQ:
        raise InvalidSearch(path, f"Must be between 0 and {MAX_MODSEQ}")
    if not (budget.offers("CONDSTORE") or budget.offers("QRESYNC")):
        raise MissingExtension(path, "This server has no CONDSTORE, so it cannot search by "
                                     "modseq", "CONDSTORE")
    budget.term(path)
    return [["MODSEQ", str(value)]]


_NOTHING: Key = ["NOT", "ALL"]
_OBJECTID = re.compile(r"[A-Za-z0-9_-]{1,255}\Z")  # RFC 8474 objectid
_GMAIL_ID = re.compile(r"[0-9]{1,20}\Z")  # X-GM-MSGID / X-GM-THRID: unsigned 64-bit


def _object_id(name: str, objectid_key: str, gmail_key: str) -> Callable[..., list[Key]]:
    def compile_id(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
        if not isinstance(value, str) or not value:
            raise InvalidSearch(path, "Must be a non-empty string")
        if len(value) > MAX_ID:
            raise InvalidSearch(path, f"Longer than {MAX_ID} characters")
        budget.term(path)
        budget.spend(path, len(value.encode("utf-8", "replace")))
        if budget.offers("OBJECTID"):
            return [[objectid_key, value] if _OBJECTID.match(value) else _NOTHING]
        if budget.offers("X-GM-EXT-1"):
            ok = _GMAIL_ID.match(value) and int(value) < 2**64
            return [[gmail_key, value] if ok else _NOTHING]
        if budget.resolve is None:
            raise MissingExtension(path, f"This server cannot search by {name}", "OBJECTID")
        uids = sorted({int(uid) for uid in budget.resolve(name, value)})
        if not uids:
            return [_NOTHING]
        uid_set = _compact(uids)
        if len(uid_set) > MAX_UID_SET:
            raise InvalidSearch(path, f"Matches too many messages to search by {name}")
        budget.spend(path, len(uid_set))
        return [["UID", uid_set]]

    return compile_id


def _compact(uids: list[int]) -> str:
    """Sorted UIDs as an IMAP set: ``[1, 2, 3, 7]`` -> ``1:3,7``."""
    runs: list[list[int]] = []
    for uid in uids:
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in runs)


def _gmail_raw(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
    if not isinstance(value, str) or not value:
        raise InvalidSearch(path, "Must be a non-empty string")
    if len(value) > MAX_GMAIL_RAW:
        raise InvalidSearch(path, f"Longer than {MAX_GMAIL_RAW} characters")
    if not budget.offers("X-GM-EXT-1"):
        raise MissingExtension(
            path, "gmailRaw is Gmail's search syntax: this server does not offer it "
                  "(no X-GM-EXT-1 capability)", "X-GM-EXT-1")
    budget.term(path)
    return [["X-GM-RAW", _string(value, path, budget)]]


def _labels(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
    """``{"has": [...], "not": [...]}``: has every label of ``has`` and none of ``not``."""
    if not isinstance(value, Mapping) or not value or set(value) - {"has", "not"}:
        raise InvalidSearch(path, 'Must be an object with "has" and/or "not" label lists')
    if not budget.offers("X-GM-EXT-1"):
        raise MissingExtension(
            path, "labels are Gmail's (X-GM-LABELS): this server has none (no X-GM-EXT-1 "
                  "capability); use keyword, or source=index", "X-GM-EXT-1")
    keys: list[Key] = []
    for part in ("has", "not"):
        labels = value.get(part, [])
        if not isinstance(labels, list) or len(labels) > MAX_LABELS:
            raise InvalidSearch(_join(path, part), f"Must be a list of at most {MAX_LABELS} "
                                                   "labels")
        for number, label in enumerate(labels):
            here = _join(path, f"{part}.{number}")
            if not isinstance(label, str) or not label or len(label) > MAX_LABEL:
                raise InvalidSearch(here, f"Must be a label of 1 to {MAX_LABEL} characters")
            if "\x00" in label:
                raise InvalidSearch(here, "Null characters are not allowed")
            encoded = imap_utf7.encode(label)
            budget.term(here)
            budget.spend(here, len(encoded))
            key: Key = ["X-GM-LABELS", String(encoded)]
            keys.append(key if part == "has" else ["NOT", *key])
    if not keys:
        raise InvalidSearch(path, "Must name at least one label")
    return keys


def _keyword(key: str) -> Callable[..., list[Key]]:
    def compile_keyword(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
        try:
            keyword = check_keyword(value)
        except ValueError as exc:
            raise InvalidSearch(path, str(exc)) from None
        budget.term(path)
        budget.spend(path, len(keyword))
        return [[key, keyword]]

    return compile_keyword


def _header(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
    if not isinstance(value, Mapping):
        raise InvalidSearch(path, "Must be an object of header names to values")
    if not value:
        raise InvalidSearch(path, "Must name at least one header")
    if len(value) > MAX_HEADERS:
        raise InvalidSearch(path, f"At most {MAX_HEADERS} headers")
    keys: list[Key] = []
    for name, wanted in value.items():
        here = _join(path, str(name))
        try:
            check_header_name(name)
        except ValueError as exc:
            raise InvalidSearch(here, str(exc)) from None
        budget.term(here)
        budget.spend(here, len(name))
        # An empty value matches every message that has the header (RFC 3501).
        keys.append(["HEADER", String(name.encode("ascii")), _string(wanted, here, budget)])
    return keys


def _or(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
    if not isinstance(value, list):
        raise InvalidSearch(path, "Must be a list of criteria objects")
    if not 2 <= len(value) <= MAX_OR_ITEMS:
        raise InvalidSearch(path, f"Must list between 2 and {MAX_OR_ITEMS} criteria objects")
    if depth >= MAX_DEPTH:
        raise InvalidSearch(path, f"Nested deeper than {MAX_DEPTH} levels of or/not")
    operands = [
        _operand(_compile(item, _join(path, str(index)), depth + 1, budget))
        for index, item in enumerate(value)
    ]
    # OR takes two keys: a OR b OR c is "OR a OR b c".
    key = operands[-1]
    for operand in reversed(operands[:-1]):
        budget.term(path)
        key = ["OR", *operand, *key]
    return [key]


def _not(value: Any, path: str, depth: int, budget: _Budget) -> list[Key]:
    if depth >= MAX_DEPTH:
        raise InvalidSearch(path, f"Nested deeper than {MAX_DEPTH} levels of or/not")
    budget.term(path)
    return [["NOT", *_operand(_compile(value, path, depth + 1, budget))]]


# The order keys are sent in.
_CRITERIA: dict[str, Callable[[Any, str, int, _Budget], list[Key]]] = {
    "uid": _uid,
    "seq": _seq,
    "emailId": _object_id("emailId", "EMAILID", "X-GM-MSGID"),
    "threadId": _object_id("threadId", "THREADID", "X-GM-THRID"),
    "seen": _flag("SEEN", "UNSEEN"),
    "unseen": _flag("UNSEEN", "SEEN"),
    "flagged": _flag("FLAGGED", "UNFLAGGED"),
    "answered": _flag("ANSWERED", "UNANSWERED"),
    "draft": _flag("DRAFT", "UNDRAFT"),
    "deleted": _flag("DELETED", "UNDELETED"),
    "keyword": _keyword("KEYWORD"),
    "unKeyword": _keyword("UNKEYWORD"),
    "since": _date("SINCE"),
    "before": _date("BEFORE"),
    "sentSince": _date("SENTSINCE"),
    "sentBefore": _date("SENTBEFORE"),
    "larger": _number("LARGER"),
    "smaller": _number("SMALLER"),
    "modseq": _modseq,
    "from": _text("FROM"),
    "to": _text("TO"),
    "cc": _text("CC"),
    "bcc": _text("BCC"),
    "subject": _text("SUBJECT"),
    "header": _header,
    "body": _text("BODY"),
    "text": _text("TEXT"),
    "gmailRaw": _gmail_raw,
    "labels": _labels,
    "or": _or,
    "not": _not,
}
CRITERIA_NAMES = tuple(_CRITERIA)


# -- value checks (shared with the API serializer) ------------------------------------------


def check_uid_set(value: Any) -> str:
    """*value* if it is an IMAP sequence set of UIDs (``1:5,7,10:*``), else ValueError."""
    if not isinstance(value, str):
        raise ValueError("Must be a string")
    if not value:
        raise ValueError("Must not be empty")
    if len(value) > MAX_UID_SET:
        raise ValueError(f"Longer than {MAX_UID_SET} characters")
    if not _UID_SET.match(value) or any(
        int(n) > MAX_NUMBER for n in re.findall(r"\d+", value)
    ):
        raise ValueError("Must be a UID set such as 1:5,7,10:* (UIDs 1 to 4294967295)")
    return value


def check_seq_set(value: Any) -> str:
    """*value* if it is an IMAP sequence set of message numbers (``1:10``, ``1,3,5:*``)."""
    try:
        return check_uid_set(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace("a UID set", "a sequence set")
                         .replace("(UIDs", "(numbers")) from None


def check_keyword(value: Any) -> str:
    """*value* if it is an IMAP flag keyword (an atom: ``$Important``, ``NonJunk``)."""
    if not isinstance(value, str):
        raise ValueError("Must be a string")
    if not value or len(value) > MAX_ATOM or not _ATOM.match(value):
        raise ValueError(
            "Must be an IMAP keyword: 1 to 200 printable ASCII characters, "
            'none of ( ) { } % * " \\ ] or space'
        )
    return value


def check_header_name(value: Any) -> str:
    """*value* if it is a header field name (RFC 5322: printable ASCII without colon)."""
    if not isinstance(value, str):
        raise ValueError("Must be a string")
    if not value or len(value) > MAX_ATOM or not _FIELD_NAME.match(value):
        raise ValueError("Not a header field name (printable ASCII without spaces or colons)")
    return value


def to_date(value: Any) -> date:
    """The day of an ISO 8601 date or date-time (a string, ``date`` or ``datetime``).

    A date-time with a UTC offset is converted to UTC first; one without is taken as it is.
    Only the extended ``YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|+HH:MM]`` form is accepted.
    """
    if isinstance(value, str):
        if not _ISO_DATE.match(value):
            raise ValueError("Must be an ISO 8601 date or date-time (2024-02-01, 2024-02-01T10:00Z)")
        try:
            value = datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
        except ValueError:
            raise ValueError("Not a valid date") from None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.date()
    if isinstance(value, date):
        return value
    raise ValueError("Must be an ISO 8601 date or date-time string")


def imap_date(day: date) -> str:
    """``1-Feb-2024``: RFC 3501's date, English month names whatever the locale."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year:04d}"


# -- wire form -------------------------------------------------------------------------------


def wire_chunks(args: Sequence[Arg], nonsync_limit: int | None = None) -> list[bytes]:
    """The bytes of *args* as a command tail (tag not included), ending in CRLF.

    Split where a synchronizing literal is announced: the caller sends the first chunk, then
    waits for the server's ``+`` before each further chunk. Literals of at most *nonsync_limit*
    bytes are non-synchronizing (``{n+}``), so with LITERAL+ there is one chunk. ``(`` and
    ``)`` are joined without spaces, as the grammar wants.
    """
    chunks: list[bytes] = []
    out = bytearray()
    previous: Arg | None = None
    for arg in args:
        if previous is not None and previous != "(" and arg != ")":
            out += b" "
        if isinstance(arg, String):
            if arg.quotable:
                out += b'"' + arg.data + b'"'
            elif nonsync_limit is not None and len(arg.data) <= nonsync_limit:
                out += b"{%d+}\r\n" % len(arg.data) + arg.data
            else:
                out += b"{%d}\r\n" % len(arg.data)
                chunks.append(bytes(out))
                out = bytearray(arg.data)
        elif isinstance(arg, str) and _SYNTAX.match(arg):
            out += arg.encode("ascii")
        else:
            raise ValueError(f"not an IMAP syntax token: {arg!r}")  # a bug in this module
        previous = arg
    out += b"\r\n"
    chunks.append(bytes(out))
    return chunks


# -- running ---------------------------------------------------------------------------------


def uid_search(
    client: imapclient.IMAPClient,
    criteria: Mapping[str, Any],
    *,
    literal_plus: bool = True,
    utf8_accept: bool | None = None,
    resolve: Resolve | None = None,
) -> list[int]:
    """``UID SEARCH`` for *criteria* in the selected folder: the matching UIDs, sorted.

    With ESEARCH the server is asked for ``RETURN (ALL)`` (compact ranges, as in
    ``fetch.search_uids``). ``literal_plus=False`` sends synchronizing literals even when the
    server has LITERAL+. *utf8_accept* says whether UTF8=ACCEPT is enabled on this connection
    (then no CHARSET is sent); by default imaplib's own record of it is used. Raises
    ``InvalidSearch`` before anything is sent; a NO/BAD from the server raises
    ``imaplib.IMAP4.error``, after which the connection is still usable. *resolve* answers
    ``emailId``/``threadId`` on servers that cannot search by them (see the module docstring).
    """
    compile_search(criteria)  # bad values are refused before anything is sent (even CAPABILITY)
    capabilities = {
        (c.decode("ascii", "replace") if isinstance(c, bytes) else str(c)).upper()
        for c in client.capabilities()}
    args = compile_search(criteria, capabilities, resolve)
    imap = underlying.connection(client)
    if utf8_accept is None:
        utf8_accept = bool(getattr(imap, "utf8_enabled", False))
    esearch = client.has_capability("ESEARCH")
    command: list[Arg] = ["UID", "SEARCH"]
    if esearch:
        command += ["RETURN", "(", "ALL", ")"]
    if needs_charset(args) and not utf8_accept:
        command += ["CHARSET", "UTF-8"]
    chunks = wire_chunks(command + args, _nonsync_limit(client, literal_plus))

    uids: list[int] = []
    tag = imap._new_tag()

    def on_untagged(texts: list[bytes], literals: list[bytes]) -> None:
        head = texts[0][:10].upper()
        # At most ``fetch.MAX_UIDS`` in all: a range is a few bytes for any number of UIDs.
        if esearch and head == b"* ESEARCH ":
            uids.extend(fetch._esearch_uids(b" ".join(texts), literals, tag,
                                            fetch.MAX_UIDS - len(uids)))
        elif not esearch and head[:9] == b"* SEARCH ":
            uids.extend(fetch.search_line_uids(texts[0], fetch.MAX_UIDS - len(uids)))
        elif texts[0].upper() != b"* SEARCH":
            fetch._stash(imap, texts, literals)

    try:
        imap.send(tag + b" " + chunks[0])
        for chunk in chunks[1:]:
            _await_continuation(imap, tag)
            imap.send(chunk)
        fetch._read_until_tagged(imap, tag, "UID SEARCH", on_untagged)
    finally:
        imap.tagged_commands.pop(tag, None)
    return sorted(set(uids))


def _nonsync_limit(client: imapclient.IMAPClient, literal_plus: bool) -> int | None:
    if not literal_plus:
        return None
    if client.has_capability("LITERAL+"):
        return MAX_VALUE_BYTES  # no limit: every value is at most this
    if client.has_capability("LITERAL-"):
        return LITERAL_MINUS_MAX
    return None


def _await_continuation(imap: Any, tag: bytes) -> None:
    """Read until the server's ``+`` (go on with the literal).

    Untagged responses on the way are filed with imaplib as usual. A tagged answer means the
    server refused the command before its end (a literal too large, a syntax error): the
    command is over, so that raises ``imap.error`` and nothing more is sent.
    """
    tagged = tag + b" "
    while True:
        line = fetch._line(imap, imap.readline())
        if line[:1] == b"+":
            return
        if line[:2] == b"* ":
            texts, literals = [line], []
            size = parse.literal_size(line)
            while size is not None:
                literal = imap.read(size)
                if len(literal) != size:
                    raise imap.abort("socket error: EOF inside a literal")
                literals.append(literal)
                line = fetch._line(imap, imap.readline())
                texts.append(line)
                size = parse.literal_size(line)
            fetch._stash(imap, texts, literals)
            if texts[0][:6].upper() == b"* BYE ":
                raise imap.abort(texts[0][6:].decode("utf-8", "replace"))
        elif line.startswith(tagged):
            status, _, text = line[len(tagged):].partition(b" ")
            raise imap.error(
                f"UID SEARCH failed: {status.decode('ascii', 'replace')} "
                f"{text.decode('utf-8', 'replace')}"
            )
        else:
            raise imap.abort(f"unexpected response: {line[:200]!r}")
