"""Reading the index: folders, message pages and cursors, message lookup by id.

Everything here answers from PostgreSQL alone (no IMAP round trip), which is what makes a
listing cost milliseconds. Message ids are checked against the account they are used with, and
resolve through the folder's current number, so an id minted before a UIDVALIDITY change, for
another account, or mangled, is a clean 404.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from types import SimpleNamespace

import orjson
from django.db import connection, models
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

from accounts.errors import AccountNotFound
from accounts.models import EmailAccount
from emailapi.lib import jsondepth
from emailapi.lib.rows import ModelColumns, prepared_rows
from mailboxes import bounces, ids, message_fields, summary_memo
from mailboxes.errors import (
    AttachmentNotFound,
    InvalidCursor,
    MailboxNotFound,
    MessageNotFound,
    SendOnlyAccount,
)
from mailboxes.models import Folder, Message, UidBlock


def folder_for_path(account: EmailAccount, path: str) -> Folder:
    """A folder by path, or by special use (``\\Sent``, ``\\Trash``...) as EmailEngine allows."""
    return _folder_in(Folder.objects.filter(email_account=account), path)


def tenant_folder(tenant, account_id: str, path: str, with_account: bool = True) -> Folder:
    """Account and folder in one fixed, prepared query (``emailapi.lib.rows``: the hot path
    of searches and bulk changes, whose ORM compilation cost more than the query); on a miss,
    says which one is missing (the account first: another tenant's account is not found
    either). ``with_account=False`` leaves the (wide) account row out where only its id is
    needed. Matches as ``_folder_in`` does."""
    folder_columns, account_columns = _tenant_folder_columns()
    match, argument = _path_match("f", path)
    select = folder_columns.select + (f", {account_columns.select}" if with_account else "")
    rows = prepared_rows(
        f"SELECT {select} FROM {Folder._meta.db_table} f "
        f"JOIN {EmailAccount._meta.db_table} a ON a.id = f.email_account_id "
        f"WHERE a.tenant_id = %s AND a.account_id = %s AND {match} ORDER BY f.path LIMIT 1",
        [tenant.pk, account_id, argument])
    if rows:
        folder = folder_columns.instance(rows[0][:len(folder_columns)])
        if with_account:
            folder.email_account = account_columns.instance(rows[0][len(folder_columns):])
            if not folder.email_account.imap:  # IMAP turned off: what is indexed is stale
                raise SendOnlyAccount(account_id)
        return folder
    account = EmailAccount.of_tenant(tenant, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    if not account.imap:  # a send-only account has no folder to find
        raise SendOnlyAccount(account_id)
    raise MailboxNotFound(path)


def _path_match(alias: str, path: str) -> tuple[str, str]:
    """The SQL condition (on folder alias ``alias``) and its argument that find ``path`` as
    ``_folder_in`` does: a special use (``\\Sent``) in any case, INBOX in any case, else the
    exact path. Where several match (special use), the first by path is meant."""
    if path.startswith("\\"):
        return f"UPPER({alias}.special_use) = UPPER(%s)", path
    if path.upper() == "INBOX":
        return f"UPPER({alias}.path) = %s", "INBOX"
    return f"{alias}.path = %s", path


@functools.cache
def _tenant_folder_columns() -> tuple[ModelColumns, ModelColumns]:
    return ModelColumns(Folder, "f"), ModelColumns(EmailAccount, "a")


def _folder_in(folders: QuerySet, path: str) -> Folder:
    if path.startswith("\\"):
        folder = folders.filter(special_use__iexact=path).order_by("path").first()
    elif path.upper() == "INBOX":
        folder = folders.filter(path__iexact="INBOX").order_by("path").first()
    else:
        folder = folders.filter(path=path).first()
    if folder is None:
        raise MailboxNotFound(path)
    return folder


def sync_time(account: EmailAccount) -> datetime | None:
    """When the index last caught up with one of the account's folders (EmailEngine's
    ``syncTime``): the newest of their ``syncedAt``; None before any sync."""
    return Folder.objects.filter(email_account=account).aggregate(
        newest=models.Max("last_synced_at"))["newest"]


def sync_times(accounts: Collection[EmailAccount]) -> dict[int, datetime]:
    """``sync_time`` of many accounts in one query (a page of ``GET /v1/accounts``), by
    the account's pk; an account never synced is absent."""
    rows = (Folder.objects.filter(email_account__in=accounts, last_synced_at__isnull=False)
            .values("email_account").annotate(newest=models.Max("last_synced_at")))
    return {row["email_account"]: row["newest"] for row in rows}


def folder_summary(folder: Folder, chosen: Collection[str] = ()) -> dict:
    """``chosen``: the paths whose special use the account's settings choose
    (``mailboxes.special_use``)."""
    flags = {flag.lower() for flag in folder.list_flags}
    return {
        "path": folder.path, "name": folder.name, "delimiter": folder.delimiter or None,
        "parentPath": folder.parent_path or None, "specialUse": folder.special_use or None,
        "specialUseSource": special_use_source(folder, chosen),
        # Every indexed folder came from LIST (subscribed-only LSUB entries are not kept).
        "listed": True,
        "subscribed": folder.subscribed, "noSelect": folder.no_select,
        "noInferiors": "\\noinferiors" in flags,
        "messages": folder.messages, "unseen": folder.unseen,
        "uidValidity": str(folder.uidvalidity) if folder.uidvalidity else None,
        "uidNext": folder.uidnext, "highestModseq": folder.highestmodseq,
        "syncedAt": message_fields.iso(folder.last_synced_at),
    }


def special_use_source(folder: Folder, chosen: Collection[str] = ()) -> str | None:
    """How ``specialUse`` was found, in EmailEngine's words: ``user`` (the account's settings
    chose it: a path of ``chosen``), ``extension`` (the server's SPECIAL-USE attribute in LIST)
    or ``name`` (INBOX, or a well-known folder name on a server without SPECIAL-USE); None
    without a special use."""
    if not folder.special_use:
        return None
    if folder.path in chosen:
        return "user"
    flags = {flag.lower() for flag in folder.list_flags}
    return "extension" if folder.special_use.lower() in flags else "name"


# EmailEngine's folder order (imapflow's list): special-use folders first, in this order,
# then the others by path, segment by segment.
SPECIAL_USE_ORDER = ("\\Inbox", "\\Flagged", "\\Sent", "\\Drafts", "\\All", "\\Archive",
                     "\\Junk", "\\Trash")


def _emailengine_order(folder: Folder):
    segments = folder.path.split(folder.delimiter) if folder.delimiter else [folder.path]
    if folder.special_use in SPECIAL_USE_ORDER:
        return (0, SPECIAL_USE_ORDER.index(folder.special_use), folder.path)
    return (1, 0, [(segment.casefold(), segment) for segment in segments])


def folders_of(account: EmailAccount, order: str = "specialUse") -> list[Folder]:
    """The account's folders in EmailEngine's order (``specialUse``), or INBOX first and then
    by path, case-insensitively (``path``, this service's order before EmailEngine's)."""
    folders = Folder.objects.filter(email_account=account)
    if order == "path":
        return sorted(folders, key=lambda f: (f.special_use != "\\Inbox", f.path.lower()))
    return sorted(folders, key=_emailengine_order)


# --- message pages --------------------------------------------------------------------------


# Columns a listing never shows: left in the database, not decoded per row.
LISTING_DEFERRED = ("references", "from_text", "to_text",
                    "cc_text", "bcc_text", "indexed_at")


def newest_first(folder: Folder) -> QuerySet:
    return Message.objects.filter(folder=folder).order_by("-uid").defer(*LISTING_DEFERRED)


def page_of(folder: Folder, page: int, page_size: int, cursor: str | None) -> dict:
    """One page, newest first. ``page`` is an offset (EmailEngine's); ``cursor`` continues
    below the last UID of the previous page (``nextPageCursor``) or above the first UID of the
    next one (``prevPageCursor``), so arrivals and expunges between requests neither repeat nor
    skip a message. A cursor carries the number of the page it leads to, which the answer's
    ``page`` reports as EmailEngine's does.

    The page is read with one extra row (is there a next page?). The total is the folder's
    message count as the last sync saw it (EXISTS, what EmailEngine reports too) once its
    history is indexed, else a COUNT of the rows indexed so far.
    """
    rows = newest_first(folder)
    at = decode_cursor(cursor, folder) if cursor else None
    complete = folder.synced_uidnext is not None and not folder.backfill_below
    total = folder.messages if complete else Message.objects.filter(folder=folder).count()
    if at is not None and at.above:
        newer = list(Message.objects.filter(folder=folder, uid__gt=at.uid).order_by("uid")
                     .defer(*LISTING_DEFERRED)[:page_size + 1])
        if len(newer) > page_size:
            return _page(folder, total, at.page, page_size, newer[:page_size][::-1],
                         more=True, after_cursor=True)
        at, page = None, 0  # fewer than a page above: that is the first page
    if at is not None:
        rows, page, start = rows.filter(uid__lt=at.uid), at.page, 0
    else:
        start = page * page_size
    fetched = list(rows[start:start + page_size + 1]) if at or start < total else []
    return _page(folder, total, page, page_size, fetched[:page_size],
                 more=len(fetched) > page_size, after_cursor=at is not None)


def _with_bounces(folder: Folder, messages: list[dict]) -> list[dict]:
    """``bounces.on_page`` for a folder whose account row may have come with it
    (``tenant_folder``); without it, the bounces are asked for."""
    account = folder.email_account if Folder.email_account.is_cached(folder) else None
    has_bounces = account.has_bounces if account is not None else True
    return bounces.on_page(folder.email_account_id, has_bounces, messages)


def _page(folder: Folder, total: int, page: int, page_size: int, items: list, more: bool,
          after_cursor: bool, messages: list[dict] | None = None) -> dict:
    """A listing's answer; ``prevPageCursor`` is there past the first page (a cursor's page
    always has newer messages above it). ``messages``: the items' summaries, when the caller
    has them already."""
    has_previous = bool(items) and (after_cursor or page > 0)
    return {
        "total": total,
        "page": page,
        "pages": max(1, math.ceil(total / page_size)),
        "nextPageCursor": encode_cursor(folder, items[-1].uid, page + 1) if more else None,
        "prevPageCursor": encode_cursor(folder, items[0].uid, max(page - 1, 0), above=True)
        if has_previous else None,
        "messages": messages if messages is not None
        else _with_bounces(folder, [message_fields.summary(folder, row) for row in items]),
    }


# --- the hot path: one query per listing -----------------------------------------------------

# Folder columns a listing needs; the message columns are those a summary shows
# (``message_fields.COLUMNS``), decoded by their model field's type.
_PAGE_FOLDER = ("id", "email_account_id", "number", "path", "special_use", "uidvalidity",
                "messages", "synced_uidnext", "backfill_below")


def _columns_of(kind: type[models.Field]) -> frozenset[str]:
    return frozenset(c for c in message_fields.COLUMNS
                     if isinstance(Message._meta.get_field(c), kind))


_JSON = _columns_of(models.JSONField)
_DATES = _columns_of(models.DateTimeField)
_BOOLEANS = _columns_of(models.BooleanField)


# From this offset on, a page is found through the per-block counts (``_page_rows``).
DEEP_OFFSET = 2 * UidBlock.BLOCK_SIZE


def tenant_page(tenant, account_id: str, path: str, page: int, page_size: int,
                cursor: str | None) -> dict:
    """``page_of(tenant_folder(...))`` in one round trip: listings are what users call most,
    and the two ORM queries (plus building a model per row) would be most of their cost. The
    folder is found by a scalar subquery, so the (folder, uid) index is walked newest first
    and stops after the page. Anything unusual (no rows: an empty folder, a page past the end,
    an unknown folder or account, an unfinished first sync) takes the ordinary path."""
    at = decode_cursor(cursor, None) if cursor else None
    if at is not None and at.above:  # a step back (rarer): the ordinary path
        return page_of(tenant_folder(tenant, account_id, path), page, page_size, cursor)
    below = at.uid if at is not None else None
    start = 0 if cursor else page * page_size
    rows = _page_rows(tenant.pk, account_id, path, below, start, page_size + 1)
    if not rows:
        return page_of(tenant_folder(tenant, account_id, path), page, page_size, cursor)
    has_bounces, send_only = rows[0][len(_PAGE_FOLDER):len(_PAGE_FOLDER) + 2]
    if send_only:  # IMAP turned off (``imap: false``): what is indexed is stale
        raise SendOnlyAccount(account_id)
    head = dict(zip(_PAGE_FOLDER, rows[0][:len(_PAGE_FOLDER)], strict=True))
    folder = Folder(**head)
    if below is not None:
        _check_cursor(cursor, folder)
    if folder.synced_uidnext is None or folder.backfill_below:
        return page_of(tenant_folder(tenant, account_id, path), page, page_size, cursor)
    # Rows whose values were listed before keep their summary (``summary_memo``); only the
    # UIDs are needed for the cursors.
    values = [row[len(_PAGE_FOLDER) + 2:] for row in rows[:page_size]]
    convert = _summary_of(folder)
    messages = bounces.on_page(folder.email_account_id, has_bounces,
                               [summary_memo.summary(folder, row, convert) for row in values])
    uids = [SimpleNamespace(uid=row[_UID]) for row in values]
    return _page(folder, folder.messages, at.page if at is not None else page, page_size,
                 uids, more=len(rows) > page_size, after_cursor=at is not None,
                 messages=messages)


_UID = message_fields.COLUMNS.index("uid")


def _summary_of(folder: Folder):
    return lambda values: message_fields.summary(folder, row_of(values))


def _summary_columns() -> list[str]:
    """The message columns a summary is made of (``row_of``), under alias ``m``. Dates as
    text: parsed only for a row the memo does not know (``row_of``), not by the driver for
    every row of every page."""
    quote = connection.ops.quote_name
    return [f"CAST(m.{quote(Message._meta.get_field(c).column)} AS TEXT)" if c in _DATES
            else f"m.{quote(Message._meta.get_field(c).column)}" for c in message_fields.COLUMNS]


def summaries(folder: Folder, uids: list[int]) -> dict[int, dict]:
    """The summaries of these UIDs of ``folder`` that are indexed, by UID, as a listing makes
    them (one prepared query; summaries remembered by ``summary_memo``): a search's page."""
    if not uids:
        return {}
    if connection.vendor == "postgresql":
        match, params = "= ANY(%s)", [folder.pk, list(uids)]
    else:
        match, params = f"IN ({', '.join(['%s'] * len(uids))})", [folder.pk, *uids]
    rows = prepared_rows(f"SELECT {', '.join(_summary_columns())} "
                         f"FROM {Message._meta.db_table} m "
                         f"WHERE m.folder_id = %s AND m.uid {match}", params)
    convert = _summary_of(folder)
    return {values[_UID]: summary_memo.summary(folder, values, convert) for values in rows}


def _page_rows(tenant_id: int, account_id: str, path: str, below: int | None, start: int,
               limit: int) -> list[tuple]:
    quote = connection.ops.quote_name
    folder_table, message_table = quote(Folder._meta.db_table), quote(Message._meta.db_table)
    account_table = quote(EmailAccount._meta.db_table)
    columns = [f"f.{quote(c)}" for c in _PAGE_FOLDER] + ["a.has_bounces", "a.imap IS NULL"] \
        + _summary_columns()
    match, argument = _path_match("f2", path)
    folder_id = (f"(SELECT f2.id FROM {folder_table} f2 "
                 f"JOIN {account_table} a ON a.id = f2.email_account_id "
                 f"WHERE a.tenant_id = %s AND a.account_id = %s AND {match} "
                 f"ORDER BY f2.path LIMIT 1)")
    lookup = [tenant_id, account_id, argument]
    # The page's UIDs first, from the (folder, uid) index alone (a deep offset skips index
    # entries, not rows), then only those rows. A deep page (``?page=N``) first finds the UID
    # block its first message is in from the per-block counts (``UidBlock``), then skips
    # only within that block: the same cost at page 50,000 as at page 50.
    deep, prefix, before = start >= DEEP_OFFSET and connection.vendor == "postgresql", "", []
    if deep:
        block_table = quote(UidBlock._meta.db_table)
        prefix = (f"WITH at AS (SELECT through - messages AS skipped, "
                  f"(block + 1) << {UidBlock.BLOCK_BITS} AS upper FROM ("
                  f"SELECT block, messages, sum(messages) OVER (ORDER BY block DESC) AS through"
                  f" FROM {block_table} WHERE folder_id = {folder_id}) counted "
                  f"WHERE through > %s ORDER BY block DESC LIMIT 1) ")
        before = [*lookup, start]
    sql = (f"{prefix}SELECT {', '.join(columns)} FROM {message_table} m "
           f"JOIN {folder_table} f ON f.id = m.folder_id "
           f"JOIN {account_table} a ON a.id = f.email_account_id "
           f"WHERE m.folder_id = {folder_id} AND m.uid IN ("
           f"SELECT p.uid FROM {message_table} p WHERE p.folder_id = {folder_id}"
           + (" AND p.uid < %s" if below is not None else "")
           + (" AND p.uid < (SELECT upper FROM at)" if deep else "")
           + " ORDER BY p.uid DESC LIMIT %s OFFSET "
           + ("(SELECT %s - skipped FROM at)" if deep else "%s") + ") ORDER BY m.uid DESC")
    params = [*before, *lookup, *lookup, *([below] if below is not None else []), limit, start]
    return prepared_rows(sql, params)


def _json_loads(text: str):
    """``json.loads``, by orjson (several JSON columns a row): what orjson refuses and the
    standard library reads (integers beyond 64 bits, lone surrogates) is read by the latter."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def row_of(values: tuple) -> SimpleNamespace:
    """Column values as the attributes ``message_fields.summary`` reads (JSON arrives as text
    from a raw cursor, dates as text (``_page_rows`` casts them; SQLite's are in UTC, without
    an offset) or as naive datetimes in UTC, and SQLite's booleans as integers)."""
    row = dict(zip(message_fields.COLUMNS, values, strict=True))
    for name in _JSON:
        if isinstance(row[name], str):
            row[name] = _json_loads(row[name])
    for name in _DATES:
        value = parse_datetime(row[name]) if isinstance(row[name], str) else row[name]
        row[name] = value.replace(tzinfo=timezone.utc) if value and not value.tzinfo else value
    for name in _BOOLEANS:
        row[name] = bool(row[name])
    return SimpleNamespace(**row)


@dataclass(frozen=True)
class Cursor:
    """Where a listing cursor continues: below ``uid`` (a ``nextPageCursor``) or, ``above``,
    the page of messages just newer than it (a ``prevPageCursor``); ``page`` is the number of
    the page it leads to."""

    number: int
    validity: int
    uid: int
    page: int
    above: bool = False


def encode_cursor(folder: Folder, uid: int, page: int, above: bool = False) -> str:
    raw = json.dumps([folder.number, folder.uidvalidity or 0, uid, page, int(above)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, folder: Folder | None) -> Cursor:
    """The cursor's place; with a folder, also checks it was minted for it."""
    at = _cursor_parts(cursor)
    if folder is not None:
        _check_cursor(cursor, folder)
    return at


def _check_cursor(cursor: str, folder: Folder) -> None:
    at = _cursor_parts(cursor)
    if at.number != folder.number or at.validity != (folder.uidvalidity or 0):
        raise InvalidCursor()


def _cursor_parts(cursor: str) -> Cursor:
    """A cursor's fields; one minted before cursors carried a page (three numbers) leads to
    page 1, the page a first ``nextPageCursor`` led to."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = jsondepth.loads(raw, 1)  # a flat list of numbers
    except (ValueError, TypeError, binascii.Error):
        raise InvalidCursor() from None
    if not isinstance(values, list) or len(values) not in (3, 5) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise InvalidCursor()
    number, validity, uid, page, above = (*values, 1, 0) if len(values) == 3 else values
    if uid < 1 or not 0 <= page <= 10_000_000 or above not in (0, 1):
        raise InvalidCursor()
    return Cursor(number, validity, uid, page, bool(above))


# --- single messages ------------------------------------------------------------------------


def message_by_id(account: EmailAccount, message_id: str) -> tuple[Folder, Message]:
    """The message an id names: our id, or (what migrating EmailEngine users hold) the
    message's ``emailId`` or its Message-ID header (``<...>``, or bare with an ``@``). A
    message that several folders hold (Gmail labels, copies) resolves to the INBOX copy,
    else the first by folder path."""
    try:
        ref = ids.parse_message_id(ids.key(), account.pk, message_id)
    except ids.InvalidId:
        return _by_stable_id(account, message_id)
    return _row(account, ref.folder_number, ref.uid, message_id)


def _by_stable_id(account: EmailAccount, value: str) -> tuple[Folder, Message]:
    rows = Message.objects.filter(email_account=account).select_related("folder")
    if "@" in value or value.startswith("<"):
        bare = value.strip().removeprefix("<").removesuffix(">")
        rows = rows.filter(message_id__in=[value, f"<{bare}>"])
    elif 0 < len(value) <= 64:
        rows = rows.filter(email_id=value)
    else:
        rows = rows.none()
    found = sorted(rows[:50], key=lambda row: (row.folder.path.upper() != "INBOX",
                                               row.folder.path, row.uid))
    if not found:
        raise MessageNotFound(_not_found(value))
    return found[0].folder, found[0]


def _not_found(value: str) -> str:
    """A 404's words; an EmailEngine message id (8 bytes: mailbox number and UID) says why."""
    if ids.is_emailengine_message_id(value):
        return (f"Message {value!r} not found: EmailEngine message ids do not carry over; "
                f"use the message's emailId or Message-ID, or list the folder again")
    return f"Message {value!r} not found"


def message_by_text_id(account: EmailAccount, text_id: str) -> tuple[Folder, Message]:
    try:
        ref = ids.parse_text_id(ids.key(), account.pk, text_id)
    except ids.InvalidId:
        raise MessageNotFound(f"Text {text_id!r} not found") from None
    return _row(account, ref.folder_number, ref.uid, text_id)


def attachment_by_id(account: EmailAccount, attachment_id: str) -> tuple[Folder, Message, dict]:
    try:
        ref = ids.parse_attachment_id(ids.key(), account.pk, attachment_id)
    except ids.InvalidId:
        raise AttachmentNotFound(attachment_id) from None
    folder, row = _row(account, ref.folder_number, ref.uid, attachment_id)
    for part in [*row.attachments, *row.text_parts]:
        if part.get("part") == ref.part:
            return folder, row, part
    raise AttachmentNotFound(attachment_id)


def _row(account: EmailAccount, number: int, uid: int, shown: str) -> tuple[Folder, Message]:
    """The row and its folder in one query (a single message's route makes few)."""
    message, folder = _row_columns()
    rows = prepared_rows(
        f"SELECT {message.select}, {folder.select} FROM {Message._meta.db_table} m "
        f"JOIN {Folder._meta.db_table} f ON f.id = m.folder_id "
        f"WHERE f.email_account_id = %s AND f.number = %s AND m.uid = %s", [account.pk, number, uid])
    if not rows:
        raise MessageNotFound(f"Message {shown!r} not found")
    row = message.instance(rows[0][:len(message)])
    row.folder = folder.instance(rows[0][len(message):])
    row.folder.email_account = account
    return row.folder, row


@functools.cache
def _row_columns() -> tuple[ModelColumns, ModelColumns]:
    """The columns ``_row`` reads: a fixed statement (``emailapi.lib.rows``), since the ORM's
    compilation of this join cost three times the query."""
    return ModelColumns(Message, "m"), ModelColumns(Folder, "f")


# --- first-sync progress ------------------------------------------------------------------


@dataclass(frozen=True)
class FolderProgress:
    folder: Folder
    indexed: int  # rows in the index
    total: int  # the server's count at the last sync (EXISTS)
    complete: bool  # its history is indexed (new mail is followed from here on)


@dataclass(frozen=True)
class SyncProgress:
    folders: list[FolderProgress]

    @property
    def indexed(self) -> int:
        return sum(f.indexed for f in self.folders)

    @property
    def total(self) -> int:
        return sum(max(f.total, f.indexed) for f in self.folders)

    @property
    def complete(self) -> bool:
        return bool(self.folders) and all(f.complete for f in self.folders)

    @property
    def percent(self) -> int:
        return 100 if self.complete or not self.total else min(
            99, self.indexed * 100 // self.total)


def sync_progress(account: EmailAccount) -> SyncProgress:
    """How far the first sync of *account* has come: per folder, the messages indexed (rows)
    of those the server reported (EXISTS), and whether its history is done (``synced_uidnext``
    set and nothing left to back-fill). One query; folders in EmailEngine's order."""
    folders = {f.pk: f for f in folders_of(account)}
    counts = dict(Message.objects.filter(folder_id__in=list(folders)).values_list("folder_id")
                  .annotate(n=models.Count("id")).order_by())
    return SyncProgress([
        FolderProgress(folder, counts.get(pk, 0), folder.messages,
                       folder.no_select or (folder.synced_uidnext is not None
                                            and not folder.backfill_below))
        for pk, folder in folders.items()])
