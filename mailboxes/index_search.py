"""Search and threads answered from the index alone (``?source=index``): milliseconds, no IMAP.

Text criteria are substring matches served by trigram indexes on PostgreSQL (subject, sender
and recipient text; see migration 0002); flags, dates, sizes and ids are plain column tests.
What the index cannot know (bodies, arbitrary headers, keywords beyond stored flags) is left to
IMAP SEARCH, and asking for it here is a 400 naming the criterion.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timezone

from django.db import connection, transaction
from django.db.models import BooleanField, Count, F, Func, Max, Min, Q, Value

from accounts.models import EmailAccount
from mailboxes import listing, message_fields
from mailboxes.errors import NotIndexable
from mailboxes.models import Folder, Message

FLAG_CRITERIA = {"seen": "\\Seen", "flagged": "\\Flagged", "answered": "\\Answered",
                 "draft": "\\Draft", "deleted": "\\Deleted"}
TEXT_COLUMNS = {"from": "from_text", "to": "to_text", "cc": "cc_text", "bcc": "bcc_text"}
INDEX_CRITERIA = {"subject", "since", "before", "sentSince", "sentBefore", "larger", "smaller",
                  "hasAttachments", "threadId", "emailId", "messageId", "keyword", "unKeyword",
                  "unseen", "modseq", "labels", "or", "not", *FLAG_CRITERIA, *TEXT_COLUMNS}
# Not here: seq (sequence numbers exist only in an IMAP session) and gmailRaw (Gmail's own
# search language), besides bodies, arbitrary headers and whole-text search.


def criteria_q(criteria: dict) -> Q:
    """A Q object for validated search criteria (the same dict IMAP search takes)."""
    q = Q()
    for name, value in criteria.items():
        if name not in INDEX_CRITERIA:
            raise NotIndexable(name)
        q &= _one(name, value)
    return q


def _one(name: str, value) -> Q:
    if name == "subject":
        return Q(subject__icontains=value)
    if name in TEXT_COLUMNS:
        return Q(**{f"{TEXT_COLUMNS[name]}__contains": value.lower()})
    if name in FLAG_CRITERIA:
        has = _has_flag(FLAG_CRITERIA[name])
        return has if value else ~has
    if name == "unseen":  # EmailEngine's name for seen=false
        has = _has_flag("\\Seen")
        return ~has if value else has
    if name == "modseq":  # RFC 7162 MODSEQ: at least this mod-sequence
        return Q(modseq__gte=value)
    if name == "labels":  # Gmail's labels as the index keeps them (X-GM-LABELS)
        q = Q()
        for label in value.get("has") or ():
            q &= _has_flag(label, "labels")
        for label in value.get("not") or ():
            q &= ~_has_flag(label, "labels")
        return q
    if name == "keyword":
        return _has_flag(value)
    if name == "unKeyword":
        return ~_has_flag(value)
    if name == "since":
        return Q(internal_date__gte=_start_of(value))
    if name == "before":
        return Q(internal_date__lt=_start_of(value))
    if name == "sentSince":
        return Q(date__gte=_start_of(value))
    if name == "sentBefore":
        return Q(date__lt=_start_of(value))
    if name == "larger":
        return Q(size__gt=value)
    if name == "smaller":
        return Q(size__lt=value)
    if name == "hasAttachments":
        return Q(has_attachments=bool(value))
    if name == "threadId":
        return Q(thread_id=value)
    if name == "emailId":
        return Q(email_id=value)
    if name == "messageId":  # as the header has it, with or without its angle brackets
        bare = value.strip().removeprefix("<").removesuffix(">")
        return Q(message_id__in=[value, f"<{bare}>"])
    if name == "or":
        q = Q()
        for branch in value:
            q |= criteria_q(branch)
        return q
    if name == "not":
        return ~criteria_q(value)
    raise NotIndexable(name)


class _InJsonArray(Func):
    """``value`` is an element of the JSON array ``column``, for SQLite (``make run``'s
    database), which has no JSON containment: EXISTS over ``json_each``."""

    template = "EXISTS (SELECT 1 FROM json_each(%(expressions)s)"
    arg_joiner = ") WHERE value = "
    output_field = BooleanField()


def _has_flag(flag: str, column: str = "flags") -> Q:
    """*flag* is in the JSON list *column* (``flags``, or ``labels``)."""
    if connection.vendor == "postgresql":
        return Q(**{f"{column}__contains": [flag]})
    return Q(_InJsonArray(F(column), Value(flag)))


def _start_of(value) -> datetime:
    """IMAP date semantics: a date criterion means that whole day (UTC here)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=timezone.utc)
    raise NotIndexable("date")


def _prefer_indexes() -> None:
    """Message rows are wide (~1.6 KB), so a few hundred matches sit on as many pages and the
    planner, pricing each random page at 4 sequential ones (spinning disks), scans the whole
    table with UPPER() per row instead of using the trigram index: 6-15 ms instead of ~1 ms
    on 10,000 messages. On SSD-era storage a random page costs about a sequential one; say
    so for this transaction only."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL random_page_cost = 1.1")


def search(account_pk: int, folder: Folder | None, criteria: dict, page: int,
           page_size: int) -> dict:
    """One folder (newest UID first) or, with no folder, every folder (newest date first)
    of the account with primary key ``account_pk``."""
    rows = Message.objects.filter(email_account_id=account_pk).filter(criteria_q(criteria))
    if folder is not None:
        rows = rows.filter(folder=folder).order_by("-uid")
    else:
        rows = rows.order_by("-internal_date", "-id")
    # The count is a bitmap scan of the trigram index; the page walks (folder, uid) newest
    # first and stops at the page's last match (a window count would drag every matching
    # wide row through a sort).
    start = page * page_size
    with transaction.atomic():
        _prefer_indexes()
        total = rows.count()
        # Column values, not models: building 20 models (and their folders) per page cost
        # more than both queries together.
        items = list(rows.values_list("folder_id", *message_fields.COLUMNS)
                     [start:start + page_size]) if start < total else []
    folders = {f.pk: f for f in Folder.objects.filter(pk__in={i[0] for i in items})} \
        if folder is None else {folder.pk: folder}
    return {"total": total, "page": page, "pages": max(1, math.ceil(total / page_size)),
            "messages": [message_fields.summary(folders[values[0]], listing.row_of(values[1:]))
                         for values in items]}


# --- ids for an IMAP search ----------------------------------------------------------------


def _ids_in(criteria: dict, found: dict[str, set[str]]) -> dict[str, set[str]]:
    """Every emailId/threadId value in *criteria*, at any level of or/not."""
    for name in ("emailId", "threadId"):
        if name in criteria:
            found[name].add(criteria[name])
    for branch in criteria.get("or") or []:
        _ids_in(branch, found)
    if criteria.get("not"):
        _ids_in(criteria["not"], found)
    return found


def id_resolver(folder: Folder, criteria: dict):
    """The ``resolve`` callback of ``mailboxes.imap.search.uid_search`` for *criteria*: the
    folder's UIDs for each emailId/threadId they name, read from the index now, before any
    IMAP session opens (it is used only on servers that cannot search by those ids)."""
    wanted = _ids_in(criteria or {}, {"emailId": set(), "threadId": set()})
    known: dict[tuple[str, str], list[int]] = {}
    for name, column in (("emailId", "email_id"), ("threadId", "thread_id")):
        if wanted[name]:
            rows = Message.objects.filter(folder=folder, **{f"{column}__in": wanted[name]})
            for value, uid in rows.values_list(column, "uid"):
                known.setdefault((name, value), []).append(uid)

    def resolve(name: str, value: str) -> list[int]:
        return known.get((name, value), [])

    return resolve


# --- threads --------------------------------------------------------------------------------


def threads(account: EmailAccount, folder: Folder | None, page: int, page_size: int) -> dict:
    """Conversations, newest activity first, with message count, subject and participants."""
    rows = Message.objects.filter(email_account=account).exclude(thread_id="")
    if folder is not None:
        rows = rows.filter(folder=folder)
    grouped = (rows.values("thread_id")
               .annotate(messages=Count("id"), last=Max("internal_date"),
                         first=Min("internal_date"))
               .order_by("-last", "thread_id"))
    total = grouped.count()
    start = page * page_size
    page_rows = list(grouped[start:start + page_size]) if start < total else []
    ids = [r["thread_id"] for r in page_rows]
    members: dict[str, list[Message]] = {}
    for message in rows.filter(thread_id__in=ids).order_by("internal_date", "id"):
        members.setdefault(message.thread_id, []).append(message)
    out = []
    for group in page_rows:
        messages = members.get(group["thread_id"], [])
        participants = {}
        for message in messages:
            for person in [message.from_address, *message.to, *message.cc]:
                if person and person.get("address"):
                    participants.setdefault(person["address"].lower(), person)
        out.append({
            "threadId": group["thread_id"], "messages": group["messages"],
            "subject": messages[0].subject if messages else "",
            "firstDate": message_fields.iso(group["first"]),
            "lastDate": message_fields.iso(group["last"]),
            "unseen": sum(1 for m in messages if "\\Seen" not in m.flags),
            "participants": list(participants.values()),
        })
    return {"total": total, "page": page, "pages": max(1, math.ceil(total / page_size)),
            "threads": out}


def thread_messages(account: EmailAccount, thread_id: str) -> list[dict]:
    rows = (Message.objects.filter(email_account=account, thread_id=thread_id)
            .select_related("folder").order_by("internal_date", "id"))
    return [message_fields.summary(row.folder, row) for row in rows]
