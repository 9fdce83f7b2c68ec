"""The only sync module that writes the index: rows, cursors and their events, atomically.

Every function here opens one short transaction that changes index rows, advances the folder's
sync cursor where it applies, and records the events the change implies in the outbox
(``webhooks.events.record``). A crash therefore leaves either all of a change or none of it:
an event is never recorded for a change that did not commit, nor a change committed without
its event. No function here touches the network; the sync layer calls them between IMAP
round trips, never holding a transaction across I/O.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

import orjson
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from accounts import state as account_state
from accounts.models import EmailAccount
from emailapi.lib import copy_text, metrics
from emailapi.lib.rows import ModelColumns, locking, prepared_rows
from emailapi.lib.storable import storable, storable_text, unstorable
from mailboxes import bounces, ids, index_upkeep, message_fields, special_use
from mailboxes.feedback_reports import Report
from mailboxes.imap.session import FolderListing, SelectInfo
from mailboxes.imap.types import FlagChange, MessageMeta
from mailboxes.models import Bounce, Folder, Message
from mailboxes.sync import row_lines, threads
from mailboxes.sync.gmail import EVERY_CHANGE, Announcing
from mailboxes.sync.moves import Half, MoveTracker, moved_data
from webhooks import events

# --- folders ------------------------------------------------------------------------------


def apply_folder_list(account: EmailAccount, listings: Sequence[FolderListing],
                      notify: bool) -> list[Folder]:
    """Mirror the server's folder list; new and vanished folders raise mailboxNew/Deleted.
    The special uses the account's settings choose replace the server's (``special_use``)."""
    listings = special_use.applied(account.imap, listings)
    with transaction.atomic():
        existing = {f.path: f for f in _locked_folders(account.pk)}
        next_number = (max((f.number for f in existing.values()), default=0)) + 1
        seen = set()
        for listing in listings:
            seen.add(listing.path)
            folder = existing.get(listing.path)
            attrs = dict(name=listing.name, delimiter=listing.delimiter,
                         parent_path=listing.parent_path, special_use=listing.special_use,
                         subscribed=listing.subscribed, no_select=listing.no_select,
                         list_flags=list(listing.flags))
            if folder is None:
                folder = Folder.objects.create(email_account=account, path=listing.path,
                                               number=next_number, **attrs)
                next_number += 1
                existing[listing.path] = folder
                if notify:
                    events.record(account.tenant_id, events.MAILBOX_NEW, account.account_id,
                                  _folder_data(folder))
            elif any(getattr(folder, key) != value for key, value in attrs.items()):
                for key, value in attrs.items():
                    setattr(folder, key, value)
                folder.save(update_fields=list(attrs))
        for path, folder in list(existing.items()):
            if path not in seen:
                events.record(account.tenant_id, events.MAILBOX_DELETED, account.account_id,
                              _folder_data(folder))
                folder.delete()
                del existing[path]
    return sorted(existing.values(), key=_folder_order)


def _locked_folders(account_pk: int) -> list[Folder]:
    """The account's folder rows, locked until the transaction ends (``select_for_update``
    as one fixed, prepared statement: every sync pass starts with it, a worker restart
    thousands of times, and the ORM's compilation cost more than PostgreSQL's answer)."""
    return [_folder_columns().instance(row)
            for row in prepared_rows(locking(_folders_sql()), [account_pk])]


def folder_rows(account_pk: int) -> list[Folder]:
    """The account's folder rows, unlocked (the same fixed statement, for a reconnect that
    checks its index is whole before it skips a poll: ``AccountConnection``)."""
    return [_folder_columns().instance(row)
            for row in prepared_rows(_folders_sql(), [account_pk])]


@functools.cache
def _folder_columns() -> ModelColumns:
    return ModelColumns(Folder, "f")


def _folders_sql() -> str:
    return (f"SELECT {_folder_columns().select} FROM {Folder._meta.db_table} f "
            "WHERE f.email_account_id = %s")


def _folder_order(folder: Folder):
    return (folder.special_use != "\\Inbox", folder.path)


def _folder_data(folder: Folder, **extra) -> dict:
    return {"path": folder.path, "name": folder.name, "specialUse": folder.special_use or None,
            "uidValidity": str(folder.uidvalidity) if folder.uidvalidity else None, **extra}


def reset_folder(folder: Folder, info: SelectInfo) -> Folder:
    """UIDVALIDITY changed: every stored UID is void. Drop the rows, take a new folder number
    (so old message ids stop resolving) and start the folder over; raise ``mailboxReset``."""
    with transaction.atomic():
        folder = Folder.objects.select_for_update().get(pk=folder.pk)
        previous = folder.uidvalidity
        Message.objects.filter(folder=folder).delete()
        top = Folder.objects.filter(email_account_id=folder.email_account_id) \
            .aggregate(n=Max("number"))["n"]
        folder.number = (top or 0) + 1
        folder.uidvalidity = info.uidvalidity
        folder.synced_uidnext = folder.synced_modseq = folder.backfill_below = None
        folder.messages = folder.unseen = 0
        folder.save()
        account = folder.email_account
        events.record(account.tenant_id, events.MAILBOX_RESET, account.account_id,
                      _folder_data(folder, reason="uidvalidity",
                                   prevUidValidity=str(previous) if previous else None))
    return folder


def start_folder(folder: Folder, info: SelectInfo) -> Folder:
    """Begin the first sync: everything below the current UIDNEXT is history (indexed
    silently, newest first); anything from UIDNEXT on will be new. An empty folder (most of
    a new account's) has no history: it is complete at once, its counters written in the
    same statement, so its first sync is one SELECT and one write."""
    complete = {} if info.exists else {"unseen": 0, "last_synced_at": timezone.now()}
    update_folder(
        folder, uidvalidity=info.uidvalidity, uidnext=info.uidnext,
        highestmodseq=info.highestmodseq, synced_uidnext=info.uidnext,
        synced_modseq=info.highestmodseq, messages=info.exists,
        backfill_below=info.uidnext if info.exists else 0, **complete,
    )
    return folder


def update_folder(folder: Folder, **fields) -> None:
    Folder.objects.filter(pk=folder.pk).update(**fields)
    for key, value in fields.items():
        setattr(folder, key, value)


# --- messages -----------------------------------------------------------------------------


def _ids(meta: MessageMeta, thread_of: dict[str, str]) -> tuple[str, str]:
    """A new row's ``email_id`` and ``thread_id``: the server's, else computed (``threads``)
    with the threads of the messages indexed so far (``thread_of``)."""
    email_id = meta.email_id or (str(meta.gm_msgid) if meta.gm_msgid else "") or \
        threads.fingerprint(meta.message_id, meta.date or meta.internal_date, meta.size)
    thread_id = meta.thread_id or (str(meta.gm_thrid) if meta.gm_thrid else "") or \
        threads.thread_id(meta.message_id, meta.in_reply_to, meta.references, thread_of,
                          fallback=email_id)
    return email_id[:64], thread_id[:64]


def _row_values(folder: Folder, meta: MessageMeta, thread_of: dict[str, str], now: datetime,
                ids: tuple[str, str] | None = None) -> dict:
    """A new row as column values (attnames), ready for COPY without building a Model: the
    listed fields' columns as ``mailboxes.message_fields`` stores them, then the rest (the
    ids ``_ids`` gives, unless given). The reference for ``row_lines``, which writes history
    rows' COPY lines without it."""
    email_id, thread_id = ids or _ids(meta, thread_of)
    values = dict(
        message_fields.stored_values(meta),
        email_account_id=folder.email_account_id, folder_id=folder.pk, modseq=meta.modseq,
        internal_date=meta.internal_date, references=list(meta.references),
        attachments=[_part(p) for p in meta.attachments],
        text_parts=[_part(p) for p in meta.text_parts],
        email_id=email_id, thread_id=thread_id,
        from_text=_search_text(meta.from_ + meta.sender), to_text=_search_text(meta.to),
        cc_text=_search_text(meta.cc), bcc_text=_search_text(meta.bcc), indexed_at=now,
    )
    # A sender's NUL (``=?utf-8?q?a=00b?=``) would fail the batch's COPY on every retry: the
    # compiled writer declines such rows, and they are stored with U+FFFD in its place.
    return storable(values) if any(map(unstorable, values.values())) else values


def _search_text(addresses) -> str:
    """Lower-cased ``name <address>`` of each address once: Sender is a copy of From when the
    header is absent (as in a server's ENVELOPE), and storing it twice doubled the column (and
    its trigram extraction) for nothing a substring search can tell apart."""
    if not addresses:  # most Cc and Bcc
        return ""
    return ", ".join(dict.fromkeys([f"{a.name} <{a.address}>".lower()
                                    for a in addresses]))[:4000]


def _part(part) -> dict:
    return {"part": part.part, "contentType": part.content_type, "size": part.size,
            "filename": part.filename, "contentId": part.content_id,
            "disposition": part.disposition, "encoding": part.encoding, "charset": part.charset,
            "embedded": part.embedded, **({"method": part.method} if part.method else {})}


def _known_threads(email_account_id: int, metas: Iterable[MessageMeta]) -> dict[str, str]:
    """Thread ids of already-indexed messages that the batch replies to or references."""
    wanted = set()
    for meta in metas:
        if meta.in_reply_to:
            wanted.add(meta.in_reply_to)
        wanted.update(meta.references[-5:])
    if not wanted:
        return {}
    wanted = {storable_text(message_id) for message_id in wanted}  # as ``_row_values`` stores
    if connection.vendor != "postgresql":
        rows = Message.objects.filter(email_account_id=email_account_id, message_id__in=wanted)
        return dict(rows.values_list("message_id", "thread_id"))
    return {message_id: thread_id for message_id, thread_id
            in prepared_rows(_KNOWN_THREADS_SQL, [email_account_id, sorted(wanted)])
            if thread_id is not None}


# One index probe per wanted id, whatever the planner believes. As ``message_id IN (...)``
# with dozens of ids, PostgreSQL without fresh statistics for the account (a table never
# analyzed, or an account newer than the last ANALYZE: every first index) estimated the list
# to match a third of the rows and read all the account's rows instead, a scan that grew with
# every batch (24 ms a batch at 35,000 messages, O(N^2) over a first index). Equality on both
# columns of ``message_by_message_id`` is the cheapest plan under any statistics.
_KNOWN_THREADS_SQL = (
    f"SELECT wanted.id, (SELECT m.thread_id FROM {Message._meta.db_table} m"
    " WHERE m.email_account_id = %s AND m.message_id = wanted.id LIMIT 1)"
    " FROM unnest(%s::text[]) AS wanted(id)"
)


def add_messages(folder: Folder, metas: Sequence[MessageMeta], notify: bool,
                 cursor: dict | None = None, moves: MoveTracker | None = None,
                 announcing: Announcing = EVERY_CHANGE,
                 first_index: bool = False,
                 reports: Mapping[int, Report] | None = None) -> list[Message]:
    """Index new messages (skipping UIDs already indexed) and, with ``notify``, record a
    ``messageNew`` for each (or a ``messageMoved`` when ``moves`` saw it leave another folder
    in this pass) that ``announcing`` lets speak (Gmail's folder model,
    ``mailboxes.sync.gmail``), and after the ``messageNew`` of a bounce or an abuse report
    (``reports``: UID -> what it says, ``mailboxes.sync.reports``) its ``Bounce`` rows and its
    ``messageBounce``/``messageComplaint``; ``cursor`` fields of the folder advance in the same
    commit, and with ``first_index`` the account's first-index progress too. Returns the new
    rows as ``Message`` instances with ``notify`` (their events are made from them); silent
    history returns none."""
    notify = notify and announcing.folder
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if not notify and outermost:
            _commit_lazily()
        uids = [m.uid for m in metas]
        present = set(Message.objects.filter(folder=folder, uid__gte=min(uids, default=0),
                                             uid__lte=max(uids, default=0))
                      .values_list("uid", flat=True)) if uids else set()
        fresh = [m for m in metas if m.uid not in present]
        thread_of = _known_threads(folder.email_account_id, fresh)
        now = timezone.now()
        values, lines = [], []
        # History raises no event: its rows go to COPY as lines written from the message
        # itself where that was compiled (``row_lines``), without the values' dicts.
        codes = None if notify else _line_codes()
        for meta in sorted(fresh, key=lambda m: m.uid):
            email_id, thread_id = _ids(meta, thread_of)
            line = row_lines.line(codes, meta, folder.email_account_id, folder.pk, email_id,
                                  thread_id, now) if codes else None
            if line is None:
                values.append(_row_values(folder, meta, thread_of, now, (email_id, thread_id)))
            else:
                lines.append(line)
            message_id = message_fields.stored_message_id(meta)
            if message_id and message_id not in thread_of:
                thread_of[message_id] = thread_id
        _insert(values, lines)
        # Model instances only where events need them (new mail, not silent history).
        rows = [Message(**row) for row in values] if notify else []
        if notify and rows:
            account = folder.email_account
            notify_from, has_bounces = _notify_from_and_bounces(account)
            # EmailEngine's messageNew carries the message's recorded bounces, as a read does:
            # one query a batch, none for an account that never had a bounce.
            known_bounces = bounces.of_messages(account.pk, (row.message_id for row in rows)) \
                if has_bounces else {}
            for row in rows:
                if notify_from and row.internal_date and row.internal_date < notify_from:
                    continue  # EmailEngine's notifyFrom: indexed, but no event
                if not announcing.speaks(row.labels):
                    continue  # Gmail: announced from INBOX
                summary = message_fields.summary(folder, row)
                here = Half(None, summary["id"], row.uid, folder.path, summary)
                source = moves.take_left(row.email_id) if moves else None
                if source is not None:
                    events.record(account.tenant_id, events.MESSAGE_MOVED, account.account_id,
                                  moved_data(summary, source, here), path=folder.path)
                    continue
                held = moves is not None and bool(row.email_id)
                report = reports.get(row.uid) if reports else None
                data = _marked(summary, report) if report else summary
                if row.message_id in known_bounces:
                    data = {**data, "bounces": known_bounces[row.message_id]}
                event = events.record(account.tenant_id, events.MESSAGE_NEW, account.account_id,
                                      data, path=folder.path, hold=held)
                if moves:
                    here.event_pk = event.pk
                    moves.note_arrived(row.email_id, here)
                if report:
                    _record_report(account, summary["id"], report, here if held else None)
        if cursor:
            update_folder(folder, **cursor)
        if first_index:
            account_state.add_index_progress(folder.email_account_id, len(values) + len(lines))
    return rows


def _marked(summary: dict, report: Report) -> dict:
    """A report's ``messageNew`` as EmailEngine marks it: a DSN's ``deliveryReport`` (for a
    delivery or a delay), ``isBounce`` or ``isComplaint``, and ``relatedMessageId``, the
    Message-ID of the message it reports on (when it names one)."""
    marks: dict = {}
    if report.delivery_report is not None:
        marks["deliveryReport"] = report.delivery_report
    if report.bounces:
        marks.update(isBounce=True, relatedMessageId=report.bounces[0]["messageId"])
    elif report.complaint:
        related = report.complaint.get("headers", {}).get("messageId")
        marks.update(isComplaint=True, **({"relatedMessageId": related} if related else {}))
    return {**summary, **storable(marks)}  # a sender's NUL would fail the whole batch


def _record_report(account: EmailAccount, message_id: str, report: Report,
                   held: Half | None) -> None:
    """A report's ``Bounce`` rows and events, after its own ``messageNew`` (as EmailEngine
    sends them); held with it when it is held (``held``, its half of a move), so that they
    are not published before it, and withdrawn with it when it turns out to be a move
    (``remove_messages``)."""
    now = timezone.now()
    rows = []
    for number, bounce in enumerate(report.bounces):
        data = {"bounceMessage": message_id, **bounce}
        event = events.record(account.tenant_id, events.MESSAGE_BOUNCE, account.account_id,
                              storable(data), hold=held is not None)
        if held is not None:
            held.following.append(event.pk)
        response = bounce.get("response") or {}
        rows.append(Bounce(
            email_account_id=account.pk, message_id=storable_text(bounce["messageId"])[:998],
            bounce_message=message_id, recipient=storable_text(bounce["recipient"])[:998],
            action=storable_text(bounce["action"])[:32],
            response_message=storable_text(response.get("message") or ""),
            response_status=storable_text(response.get("status") or "")[:32],
            created_at=now + timedelta(microseconds=number)))  # their order, as reported
    if rows:
        Bounce.objects.bulk_create(rows)
        EmailAccount.objects.filter(pk=account.pk, has_bounces=False).update(has_bounces=True)
    if report.complaint:
        data = {"complaintMessage": message_id, **report.complaint}
        event = events.record(account.tenant_id, events.MESSAGE_COMPLAINT, account.account_id,
                              storable(data), hold=held is not None)
        if held is not None:
            held.following.append(event.pk)


def _commit_lazily() -> None:
    """Let this transaction's COMMIT return before its WAL reaches the disk (PostgreSQL's
    ``synchronous_commit = off``, for this transaction only): waiting on the flush was ~7 %
    of a loaded 20,000-message first index (py-spy). Safe because a batch of silent history
    raises no event and carries its own cursor: a database crash within the next fraction of
    a second loses the rows and the cursor together (never one without the other), and the
    sync fetches them again; any later ordinary commit (``accountInitialized``, new mail)
    flushes the WAL up to itself, these batches included."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _notify_from_and_bounces(account) -> tuple[datetime | None, bool]:
    """The account's ``notifyFrom`` and whether it has ever had a bounce, read afresh (the
    worker's account row may be older than an API update of it, or than a bounce another
    process recorded), in one query."""
    found = EmailAccount.objects.filter(pk=account.pk).values_list(
        "notify_from", "has_bounces").first()
    return found if found is not None else (None, False)


def sync_from(folder: Folder) -> datetime | None:
    """The account's ``syncFrom`` (EmailEngine's): history from before it is not indexed.
    Read afresh, like ``notifyFrom``."""
    return EmailAccount.objects.filter(pk=folder.email_account_id).values_list(
        "sync_from", flat=True).first()


def first_index_running(folder: Folder) -> bool:
    """Whether the folder's account is in its first index (``accountInitialized`` not yet)."""
    return EmailAccount.objects.filter(pk=folder.email_account_id,
                                       initialized_at__isnull=True).exists()


def _insert(rows: list[dict], lines: Sequence[bytes] = ()) -> None:
    """Insert new rows (column values by attname, and COPY lines already written: PostgreSQL
    only); on PostgreSQL with COPY. Django's bulk INSERT has psycopg escape every JSON value
    in Python (~330 us a row, half of a first index's time); COPY takes a fraction of that,
    in the same transaction."""
    if not rows and not lines:
        return
    index_upkeep.note_inserted(len(rows) + len(lines))
    metrics.messages_indexed(len(rows) + len(lines))
    if connection.vendor != "postgresql":
        Message.objects.bulk_create([Message(**row) for row in rows], batch_size=500)
        return
    names, json_columns, sql = _copy_columns()
    # COPY runs on psycopg's own cursor: Django's error wrapper makes a unique violation the
    # django.db.IntegrityError that callers catch, as it would be for an INSERT. Each row is
    # written in one pass where ``copy_text`` can; a row it leaves to psycopg is adapted value
    # by value (rows may reach the server in another order: COPY inserts each on its own).
    lines = list(lines)
    with connection.wrap_database_errors, connection.cursor() as cursor, \
            cursor.cursor.copy(sql) as copy:
        for values in rows:
            line = copy_text.row(values, names, json_columns)
            if line is None:
                copy.write_row([_json_text(values[name]) if as_json else values[name]
                                for name, as_json in zip(names, json_columns, strict=True)])
            else:
                lines.append(line)
        copy.write(b"".join(lines))


def _line_codes() -> tuple[int, ...] | None:
    """``row_lines``'s plan of the message table's COPY columns, on PostgreSQL where it was
    compiled and knows them all; ``None`` otherwise (the values' path writes every row)."""
    if connection.vendor != "postgresql":
        return None
    return _planned_line_codes()


@functools.cache
def _planned_line_codes() -> tuple[int, ...] | None:
    return row_lines.plan(_copy_columns()[0])


@functools.cache
def _copy_columns() -> tuple[tuple[str, ...], tuple[bool, ...], str]:
    """The message table's columns for COPY (attnames, in order), which of them are JSON, and
    the statement. JSON columns go as JSON text, which COPY parses into jsonb itself; the rest
    are plain Python values (going through get_db_prep_save cost a proxy lookup per field and
    row: a third of the insert)."""
    fields = [f for f in Message._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    sql = (f"COPY {quote(Message._meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
           " FROM STDIN")
    return (tuple(f.attname for f in fields),
            tuple(isinstance(f, models.JSONField) for f in fields), sql)


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json_text(value) -> str | None:
    """A JSON column's text for COPY: orjson's (a fifth of the standard encoder's time); the
    standard encoder's where orjson refuses the value (a lone surrogate in a decoded header)."""
    if value is None:
        return None
    if not value:  # most address lists, labels and parts are empty
        return "[]" if isinstance(value, list) else _dumps(value)
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _dumps(value)


def _delta(old: Sequence[str], new: Sequence[str]) -> dict | None:
    """``{"added", "deleted", "value"}`` of a flag or label list, or None when equal."""
    before, after = set(old), set(new)
    if before == after:
        return None
    return {"added": sorted(after - before), "deleted": sorted(before - after),
            "value": list(new)}


def apply_flag_changes(folder: Folder, changes: Sequence[FlagChange],
                       cursor: dict | None = None,
                       announcing: Announcing = EVERY_CHANGE) -> int:
    """Store changed flags and (where fetched) Gmail labels; one ``messageUpdated`` per
    message whose flags or labels really differ (``changes.flags`` / ``changes.labels``),
    where ``announcing`` lets it speak. Returns how many messages changed.

    The rows are updated with one pipelined statement and the events inserted with one more:
    "mark all read" on thousands of messages (through the API, or seen by a sync) is a few
    round trips, not two per message."""
    by_uid = {c.uid: c for c in changes}
    flags_field = Message._meta.get_field("flags")
    updates, recorded = [], []
    changed = 0
    with transaction.atomic():
        rows = (Message.objects.select_for_update().filter(folder=folder, uid__in=list(by_uid))
                .order_by("uid").values_list("pk", "uid", "flags", "labels", "modseq",
                                             "email_id"))
        account = folder.email_account
        for pk, uid, flags, labels, modseq, email_id in rows:
            change = by_uid[uid]
            # A server's keyword or label holding NUL is no IMAP atom, and PostgreSQL would
            # refuse it on every sync: stored as the index stores text (``storable``).
            new_flags = flags if change.flags is None else storable(list(change.flags))
            flag_delta = _delta(flags, new_flags)
            new_labels = labels if change.labels is None else storable(list(change.labels))
            label_delta = _delta(labels, new_labels)
            if flag_delta is None and label_delta is None:
                if change.modseq and change.modseq != modseq:
                    updates.append((flags, labels, change.modseq, pk))
                continue
            changed += 1
            updates.append((new_flags, new_labels, change.modseq, pk))
            if not announcing.speaks(labels, new_labels):
                continue  # Gmail: announced from INBOX
            recorded.append((events.MESSAGE_UPDATED, account.account_id, {
                "id": ids.message_id_for(folder, uid), "uid": uid, "path": folder.path,
                "emailId": email_id or None,
                "changes": {name: delta for name, delta in (("flags", flag_delta),
                                                            ("labels", label_delta)) if delta},
            }, folder.path))
        if updates:
            with connection.cursor() as db:
                db.executemany(
                    f"UPDATE {Message._meta.db_table} SET flags = %s, labels = %s, modseq = %s "
                    "WHERE id = %s",
                    [(flags_field.get_db_prep_save(flags, connection),
                      flags_field.get_db_prep_save(labels, connection), modseq, pk)
                     for flags, labels, modseq, pk in updates])
        events.record_many(account.tenant_id, recorded)
        if cursor:
            update_folder(folder, **cursor)
    return changed


def remove_messages(folder: Folder, uids: Iterable[int], cursor: dict | None = None,
                    moves: MoveTracker | None = None,
                    announcing: Announcing = EVERY_CHANGE) -> int:
    """Forget expunged messages; one ``messageDeleted`` for each that was indexed (or a
    ``messageMoved`` when ``moves`` saw it arrive in another folder in this pass) where
    ``announcing`` lets it speak."""
    uids = list(uids)
    with transaction.atomic():
        # Locked: an API expunge of the same rows (``record_expunge``) waits for this commit
        # and then finds nothing left to announce, and this waits for it likewise.
        rows = list(Message.objects.select_for_update().filter(folder=folder, uid__in=uids)
                    .order_by("uid").values_list("uid", "email_id", "message_id", "labels"))
        account = folder.email_account
        for uid, email_id, message_id, labels in rows:
            if not announcing.speaks(labels):
                continue  # Gmail: a label folder's copy, or announced from INBOX
            here = Half(None, ids.message_id_for(folder, uid), uid, folder.path)
            destination = moves.take_arrived(email_id) if moves else None
            if destination is not None:
                if destination.following:  # a report read as new mail: it was not
                    Bounce.objects.filter(email_account_id=account.pk,
                                          bounce_message=destination.id).delete()
                events.record(account.tenant_id, events.MESSAGE_MOVED, account.account_id,
                              moved_data(destination.summary, here, destination),
                              path=destination.path)
                continue
            event = events.record(account.tenant_id, events.MESSAGE_DELETED, account.account_id, {
                "id": here.id, "uid": uid, "path": folder.path,
                "emailId": email_id or None, "messageId": message_id or None,
            }, path=folder.path, hold=moves is not None and bool(email_id))
            if moves:
                here.event_pk = event.pk
                moves.note_left(email_id, here)
        Message.objects.filter(folder=folder, uid__in=[r[0] for r in rows]).delete()
        if cursor:
            update_folder(folder, **cursor)
    return len(rows)


def indexed_uids(folder: Folder) -> set[int]:
    return set(Message.objects.filter(folder=folder).values_list("uid", flat=True))


def indexed_flags(folder: Folder, low: int = 1, high: int | None = None,
                  labels: bool = False) -> dict[int, tuple[list[str], list[str]]]:
    """UID -> (flags, labels) of the indexed rows (labels read only with ``labels``)."""
    rows = Message.objects.filter(folder=folder, uid__gte=low)
    if high is not None:
        rows = rows.filter(uid__lte=high)
    if not labels:
        return {uid: (flags, []) for uid, flags in rows.values_list("uid", "flags")}
    return {uid: (flags, stored) for uid, flags, stored
            in rows.values_list("uid", "flags", "labels")}


# --- the API's own message changes (read-your-writes) ---------------------------------------
#
# The API changes the server first, then calls these at once so the next GET shows the change.
# The IMAP worker will see the same change on the server later and diff it against the index:
# finding it already there, it raises nothing. Each function locks the rows it reads and
# records only what is still missing, so whichever of the two gets there first raises the
# events, exactly once.


def _copied_values(row: Message, destination: Folder, uid: int, now: datetime) -> dict:
    values = {f.attname: getattr(row, f.attname) for f in Message._meta.concrete_fields
              if not f.primary_key}
    values.update(folder_id=destination.pk, email_account_id=destination.email_account_id,
                  uid=uid, modseq=None, indexed_at=now)
    return values


def record_transfer(source: Folder, destination: Folder, uid_map: dict[int, int],
                    keep_source: bool) -> dict[int, str]:
    """Index a COPY (``keep_source``) or MOVE the API made: the destination rows are copies
    of the source rows under their new UIDs. A move raises one ``messageMoved``; a copy one
    ``messageNew``; if the worker already indexed one half, the other half's own event
    (``messageDeleted`` or ``messageNew``) is raised instead. Returns old UID -> new id.

    The destination rows are not locked (they do not exist yet): if the worker inserts one
    of them meanwhile, the unique (folder, uid) constraint refuses one of the two inserts. When
    it is this one, its transaction (its events with it) rolls back and it runs again, now
    finding the worker's row present."""
    for attempt in range(3):
        try:
            return _record_transfer_once(source, destination, uid_map, keep_source)
        except IntegrityError:
            if attempt == 2:
                raise
    return {}


def _record_transfer_once(source: Folder, destination: Folder, uid_map: dict[int, int],
                          keep_source: bool) -> dict[int, str]:
    account = source.email_account
    now = timezone.now()
    new_ids: dict[int, str] = {}
    with transaction.atomic():
        rows = {row.uid: row for row in Message.objects.select_for_update()
                .filter(folder=source, uid__in=list(uid_map)).order_by("uid")}
        present = set(Message.objects.filter(folder=destination, uid__in=list(uid_map.values()))
                      .values_list("uid", flat=True))
        inserts, removed = [], []
        for old_uid, new_uid in sorted(uid_map.items()):
            new_ids[old_uid] = ids.message_id_for(destination, new_uid)
            row = rows.get(old_uid)
            if row is None:  # the worker saw it leave first (and said so)
                continue
            inserted = new_uid not in present
            if inserted:
                values = _copied_values(row, destination, new_uid, now)
                inserts.append(values)
            if not keep_source:
                removed.append(row.pk)
            _record_transfer_events(account, source, destination, row, old_uid, new_uid,
                                    inserted, removed=not keep_source,
                                    values=values if inserted else None)
        _insert(inserts)
        Message.objects.filter(pk__in=removed).delete()
        _shift_count(destination, len(inserts))
        _shift_count(source, -len(removed))
    return new_ids


def _record_transfer_events(account, source, destination, row, old_uid, new_uid, inserted,
                            removed, values) -> None:
    here = Half(None, ids.message_id_for(source, old_uid), old_uid, source.path)
    if inserted:
        summary = message_fields.summary(destination, Message(**values))
        there = Half(None, summary["id"], new_uid, destination.path, summary)
        if removed:
            events.record(account.tenant_id, events.MESSAGE_MOVED, account.account_id,
                          moved_data(summary, here, there), path=destination.path)
        else:
            events.record(account.tenant_id, events.MESSAGE_NEW, account.account_id, summary,
                          path=destination.path)
    elif removed:
        events.record(account.tenant_id, events.MESSAGE_DELETED, account.account_id, {
            "id": here.id, "uid": old_uid, "path": source.path,
            "emailId": row.email_id or None, "messageId": row.message_id or None,
        }, path=source.path)


def record_expunge(folder: Folder, uids: Iterable[int],
                   announcing: Announcing = EVERY_CHANGE) -> int:
    """Index an expunge the API made: ``messageDeleted`` for each row still indexed.

    The rows are locked first: ``remove_messages`` reads them without a lock, so a worker
    removing the same rows in a transaction not yet committed would otherwise be read past,
    and both would announce the deletion. Locked, this waits for the worker's commit and then
    finds the rows gone (nothing to announce)."""
    uids = sorted(set(uids))
    with transaction.atomic():
        list(Message.objects.select_for_update().filter(folder=folder, uid__in=uids)
             .order_by("uid").values_list("pk", flat=True))
        removed = remove_messages(folder, uids, announcing=announcing)
        if removed:
            _shift_count(folder, -removed)
    return removed


def _shift_count(folder: Folder, delta: int, unseen: int = 0) -> None:
    """Keep the folder's message count (a listing's ``total``) and, given, its unseen count
    right until the next sync reads EXISTS and UNSEEN again."""
    if delta:
        Folder.objects.filter(pk=folder.pk).update(
            messages=models.Case(models.When(messages__lt=-delta, then=0),
                                 default=models.F("messages") + delta))
        folder.messages = max(0, (folder.messages or 0) + delta)
    if unseen:
        Folder.objects.filter(pk=folder.pk).update(
            unseen=models.Case(models.When(unseen__lt=-unseen, then=0),
                               default=models.F("unseen") + unseen))
        folder.unseen = max(0, (folder.unseen or 0) + unseen)


# --- API writes: folders and appends ----------------------------------------------------------
#
# The API creates, renames and deletes folders and appends messages on the server first, then
# mirrors the change here at once. The worker's next LIST (``apply_folder_list``) and fetch of
# new UIDs (``add_messages``) then find the index already matching and raise nothing; if the
# worker got there first, these functions find the change present and raise nothing either.
# Concurrent inserts of the same folder or message are settled by the unique constraints: the
# loser's transaction (its event with it) rolls back.


def _folder_attrs(listing: FolderListing) -> dict:
    return dict(name=listing.name, delimiter=listing.delimiter,
                parent_path=listing.parent_path, special_use=listing.special_use,
                subscribed=listing.subscribed, no_select=listing.no_select,
                list_flags=list(listing.flags))


def record_folders_present(account: EmailAccount,
                           listings: Sequence[FolderListing]) -> dict[str, bool]:
    """Index folders the server now lists (a CREATE, its implied parents): ``mailboxNew``
    for each not indexed yet. Returns path -> whether this call added it."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _add_folders(account, listings)
        except IntegrityError:  # the worker inserted one of them (or took the number) meanwhile
            if attempt == 2:
                raise
    return {}


def _add_folders(account: EmailAccount, listings: Sequence[FolderListing]) -> dict[str, bool]:
    existing = {f.path: f for f in Folder.objects.select_for_update().filter(email_account=account)}
    top = Folder.objects.filter(email_account=account).aggregate(n=Max("number"))["n"] or 0
    added = {}
    for listing in listings:
        folder = existing.get(listing.path)
        attrs = _folder_attrs(listing)
        if folder is None:
            top += 1
            folder = Folder.objects.create(email_account=account, path=listing.path, number=top,
                                           **attrs)
            existing[listing.path] = folder
            events.record(account.tenant_id, events.MAILBOX_NEW, account.account_id,
                          _folder_data(folder))
            added[listing.path] = True
        else:
            if any(getattr(folder, key) != value for key, value in attrs.items()):
                for key, value in attrs.items():
                    setattr(folder, key, value)
                folder.save(update_fields=list(attrs))
            added[listing.path] = False
    settle_special_uses(account)
    return added


def settle_special_uses(account: EmailAccount) -> None:
    """Give every folder of the account the special use ``special_use.settled`` says, after a
    folder change made through the API (the worker's LIST applies it to the whole list). Only
    accounts that choose some (``imap.trashMailPath``...) can need it."""
    if not special_use.chosen(account.imap):
        return
    folders = list(Folder.objects.filter(email_account=account)
                   .only("pk", "path", "list_flags", "special_use"))
    uses = special_use.settled(account.imap, [(f.path, f.list_flags) for f in folders])
    for folder in folders:
        if folder.special_use != uses[folder.path]:
            Folder.objects.filter(pk=folder.pk).update(special_use=uses[folder.path])


def record_folder_renamed(account: EmailAccount, path: str, new_path: str,
                          listings: Sequence[FolderListing]) -> None:
    """Index a RENAME of *path* (and the folders below it) to *new_path*. Each renamed folder
    raises ``mailboxDeleted`` for its old path and ``mailboxNew`` for its new one, as the
    worker's LIST would; its rows keep their folder (and number), so the messages stay
    listable under the new path with the same ids. A folder the worker already re-listed is
    left as the worker made it; anything in *listings* not indexed yet is added."""
    by_path = {listing.path: listing for listing in listings}
    with transaction.atomic():
        folders = list(Folder.objects.select_for_update().filter(email_account=account))
        present = {f.path for f in folders}
        for folder in folders:
            delim = folder.delimiter
            if folder.path != path and not (delim and folder.path.startswith(path + delim)):
                continue
            target = new_path + folder.path[len(path):]
            events.record(account.tenant_id, events.MAILBOX_DELETED, account.account_id,
                          _folder_data(folder))
            if target in present or target not in by_path:
                folder.delete()  # already indexed under its new path, or no longer listed
                continue
            folder.path = target
            for key, value in _folder_attrs(by_path[target]).items():
                setattr(folder, key, value)
            folder.save()
            present.add(target)
            events.record(account.tenant_id, events.MAILBOX_NEW, account.account_id,
                          _folder_data(folder))
    record_folders_present(account, listings)


def record_folder_deleted(account: EmailAccount, path: str) -> bool:
    """Index a DELETE: the folder's row and its messages go, with one ``mailboxDeleted``
    (no ``messageDeleted`` per message, as when the worker's LIST finds it gone)."""
    with transaction.atomic():
        folder = Folder.objects.select_for_update().filter(email_account=account, path=path).first()
        if folder is None:
            return False
        events.record(account.tenant_id, events.MAILBOX_DELETED, account.account_id,
                      _folder_data(folder))
        folder.delete()
        settle_special_uses(account)  # a chosen Trash gone: the server's is Trash again
    return True


def set_subscribed(folder: Folder, subscribed: bool) -> None:
    Folder.objects.filter(pk=folder.pk).update(subscribed=subscribed)
    folder.subscribed = subscribed


def record_append(folder: Folder, meta: MessageMeta,
                  reports: Mapping[int, Report] | None = None) -> bool:
    """Index a message the API appended (its metadata fetched by UID), with ``messageNew``
    (and a report's events, ``reports`` as ``add_messages`` takes them), unless the worker
    indexed it first. The folder's counters move with it (a listing's
    ``total``, the mailbox list's ``messages`` and ``unseen``); its sync cursors stay where
    they are: the worker still fetches every UID from ``synced_uidnext`` on and skips this one
    as present (its UIDNEXT differs, so it does look). Returns whether this call indexed it."""
    try:
        with transaction.atomic():
            rows = add_messages(folder, [meta], notify=True, reports=reports)
            _shift_count(folder, len(rows),
                         unseen=sum(1 for row in rows if "\\Seen" not in row.flags))
    except IntegrityError:  # the worker inserted the same UID meanwhile (and said so)
        return False
    return bool(rows)
