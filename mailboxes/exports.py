"""Bulk message exports (EmailEngine's ``/v1/account/{account}/export`` routes): a gzip file of
NDJSON, one line per message, each line what ``GET .../message/{id}`` answers for it (its
``path`` being the folder it was exported from) with, when asked, each attachment's
``content`` in base64.

The export is a finite rq job (queue ``export``, job id ``export-<exportId>``); PostgreSQL
holds its state (``Export``) and its file (``ExportChunk`` rows of ``CHUNK_SIZE`` gzip bytes),
so the web process serving the download need not be the machine that wrote it::

    create (queued)  --job claims-->  processing: indexing    the index's rows, by folder
                                      processing: exporting   each message read from the server
                                      --> completed (exportCompleted) | failed (exportFailed)

The messages come from the index (PostgreSQL), not from an IMAP SEARCH: the folders asked for
(paths or special uses; by default every folder but Junk and Trash, as EmailEngine), and
within them the messages whose INTERNALDATE (the Date header where the index has none) is in
``[startDate, endDate)``. Only their text and attachments are read from the server.

The sweep (``sweep``, run by ``manage.py sendscheduler`` each pass) deletes expired exports
with their files, marks ``failed`` a ``processing`` export whose job stopped making progress
for ``EXPORT_STALE_AFTER`` seconds (its worker was killed: EmailEngine marks such exports failed
on restart), and enqueues again a ``queued`` export whose job was lost (a Redis flush).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models.functions import Coalesce, Length
from django.utils import timezone

from accounts.models import EmailAccount
from emailapi.lib.wording import describe
from mailboxes import errors, reading, rq_jobs
from mailboxes.message_fields import iso
from mailboxes.models import Export, ExportChunk, Folder, Message
from webhooks import events

logger = logging.getLogger(__name__)

QUEUE = "export"
ID_PREFIX = "exp_"
CHUNK_SIZE = 1024 * 1024  # gzip bytes per ExportChunk row
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
ACTIVE = (Export.Status.QUEUED, Export.Status.PROCESSING)
SKIPPED_BY_DEFAULT = ("\\Junk", "\\Trash")
PROGRESS_EVERY = 1.0  # seconds between progress writes (each also proves the job alive)
ROWS_PER_READ = 500  # index rows read in one query while exporting
_LIVE_JOB = {"queued", "started", "scheduled", "deferred"}


class Stopped(Exception):
    """The export was deleted, or marked failed by the sweep, while its job ran."""


def new_export_id() -> str:
    return ID_PREFIX + secrets.token_hex(12)


# --- the API's side -----------------------------------------------------------------------


def create(account: EmailAccount, folders: list[str], start_date, end_date, text_type: str,
           max_bytes: int, include_attachments: bool) -> Export:
    """A queued export, its job enqueued once the row commits; ``TooManyExports`` when the
    account has ``EXPORT_MAX_CONCURRENT`` queued or processing."""
    now = timezone.now()
    with transaction.atomic():
        # One create at a time per account: the count and the insert cannot interleave.
        EmailAccount.objects.select_for_update().filter(pk=account.pk).first()
        limit = settings.EXPORT_MAX_CONCURRENT
        if _visible(account).filter(status__in=ACTIVE).count() >= limit:
            raise errors.TooManyExports(limit)
        export = Export.objects.create(
            tenant_id=account.tenant_id, email_account=account, export_id=new_export_id(),
            folders=list(folders), start_date=start_date, end_date=end_date,
            text_type=text_type, max_bytes=max_bytes, include_attachments=include_attachments,
            created_at=now, expires_at=now + timedelta(seconds=settings.EXPORT_MAX_AGE))
        transaction.on_commit(lambda: enqueue_quietly(export))
    return export


def _visible(account: EmailAccount):
    """The account's exports not yet expired (the sweep may not have deleted them yet)."""
    return Export.objects.filter(email_account=account, expires_at__gt=timezone.now())


def get(account: EmailAccount, export_id: str) -> Export:
    export = _visible(account).filter(export_id=export_id).first()
    if export is None:
        raise errors.ExportNotFound(export_id)
    return export


def newest_first(account: EmailAccount):
    return _visible(account).order_by("-created_at", "-id")


def delete(account: EmailAccount, export_id: str) -> None:
    """Delete the export and its file; a queued one's job is cancelled, a running one stops
    at its next progress write."""
    export = get(account, export_id)
    ExportChunk.objects.filter(export=export).delete()
    export.delete()
    try:
        _cancel_job(export.export_id)
    except Exception as exc:  # noqa: BLE001 - a job left behind finds no export and ends
        logger.warning("could not cancel the job of export %s: %s", export.export_id, exc)


class ExportVanished(Exception):
    """A chunk of a download's file is gone: the export was deleted (or expired) while it was
    being downloaded. Raised from the stream, it cuts the answer short, which the client sees
    as an incomplete transfer (its ``Content-Length`` is not reached), never as a whole file."""


def file_chunks(export: Export) -> tuple[list[int], int]:
    """The sequence numbers of the export's gzip file's chunks, in order, and the file's size
    (``ExportNotReady`` unless completed)."""
    if export.status != Export.Status.COMPLETED:
        raise errors.ExportNotReady(export.status)
    rows = list(ExportChunk.objects.filter(export=export).order_by("seq")
                .values_list("seq", Length("data")))
    return [seq for seq, _ in rows], sum(size for _, size in rows)


def read_chunk(export: Export, seq: int) -> bytes:
    data = (ExportChunk.objects.filter(export=export, seq=seq).values_list("data", flat=True)
            .first())
    if data is None:
        logger.warning("export %s was deleted during its download: the answer is cut short",
                       export.export_id)
        raise ExportVanished(f"Export {export.export_id} was deleted during its download")
    return bytes(data)


def status(export: Export) -> dict:
    """EmailEngine's ``exportStatusSchema`` answer."""
    out = {"exportId": export.export_id, "status": export.status}
    if export.phase:
        out["phase"] = export.phase
    # isEncrypted: EmailEngine's, true where its file is encrypted at rest (with a service
    # secret). Ours is never: the ExportChunk rows hold the plain gzip bytes.
    out.update(folders=list(export.folders), startDate=iso(export.start_date),
               endDate=iso(export.end_date), isEncrypted=False, progress={
                   "foldersScanned": export.folders_scanned,
                   "foldersTotal": export.folders_total,
                   "messagesQueued": export.messages_queued,
                   "messagesExported": export.messages_exported,
                   "messagesSkipped": export.messages_skipped,
                   "bytesWritten": export.bytes_written},
               created=iso(export.created_at), expiresAt=iso(export.expires_at),
               error=export.error or None)
    return out


def entry(export: Export) -> dict:
    return {"exportId": export.export_id, "status": export.status,
            "created": iso(export.created_at), "expiresAt": iso(export.expires_at)}


# --- the job ------------------------------------------------------------------------------


def run_export(pk: int) -> str:
    """The rq job: claim the queued export, write its file, finish it. Returns what
    happened, for logs and tests."""
    close_old_connections()
    now = timezone.now()
    claimed = Export.objects.filter(pk=pk, status=Export.Status.QUEUED).update(
        status=Export.Status.PROCESSING, phase="indexing", started_at=now, heartbeat_at=now)
    if not claimed:
        return "not queued"
    export = Export.objects.select_related("email_account").get(pk=pk)
    job = _Job(export)
    try:
        job.run()
    except Stopped:
        ExportChunk.objects.filter(export_id=pk).delete()
        return "stopped"
    except Exception as exc:  # noqa: BLE001 - any failure ends the export, in words
        logger.warning("export %s failed: %s", export.export_id, exc, exc_info=True)
        close_old_connections()
        # EmailEngine's code for the condition where it has one (AuthenticationFails), ours else.
        code = getattr(exc, "ee_code", None) or getattr(exc, "code", None)
        return "failed" if fail(pk, describe(exc), code) else "stopped"
    return "completed" if job.complete() else "stopped"


class _Job:
    def __init__(self, export: Export):
        self.export = export
        self.account = export.email_account
        self.counts = {"folders_scanned": 0, "folders_total": 0, "messages_queued": 0,
                       "messages_exported": 0, "messages_skipped": 0, "bytes_written": 0}
        self.phase = "indexing"
        self.written_at = 0.0
        self.started = time.monotonic()

    def run(self) -> None:
        folders = resolve_folders(self.account, self.export.folders)
        self.counts["folders_total"] = len(folders)
        self.progress(force=True)
        rows: list[tuple[Folder, int]] = []
        for folder in folders:
            found = list(_in_range(folder, self.export).values_list("pk", flat=True))
            rows += [(folder, row_pk) for row_pk in found]
            self.counts["folders_scanned"] += 1
            self.counts["messages_queued"] += len(found)
            self.progress()
        self.phase = "exporting"
        self.progress(force=True)
        writer = _ChunkWriter(self.export.pk)
        with gzip.GzipFile(fileobj=writer, mode="wb", mtime=0) as packed:
            for start in range(0, len(rows), ROWS_PER_READ):
                batch = rows[start:start + ROWS_PER_READ]
                # A batch's index rows in one query; a row gone meanwhile is skipped.
                found = Message.objects.in_bulk([row_pk for _folder, row_pk in batch])
                for folder, row_pk in batch:
                    row = found.get(row_pk)
                    line = None if row is None or row.folder_id != folder.pk \
                        else self.line(folder, row)
                    if line is None:
                        self.counts["messages_skipped"] += 1
                    else:
                        packed.write(line)
                        self.counts["messages_exported"] += 1
                        self.counts["bytes_written"] += len(line)
                    self.progress()
        writer.flush_chunk()

    def line(self, folder: Folder, row: Message) -> bytes | None:
        """The message's NDJSON line, or None to skip it (gone from the server, or too large
        to export with its attachments)."""
        export = self.export
        if export.include_attachments and row.size > settings.EXPORT_MAX_MESSAGE_SIZE:
            return None
        max_bytes = export.max_bytes or settings.EXPORT_MAX_MESSAGE_SIZE  # 0: unlimited
        try:
            detail = reading.indexed_message_detail(self.account, folder, row, export.text_type,
                                                    max_bytes, False, True)
        except errors.MessageNotFound:
            return None
        detail["path"] = folder.path
        if export.include_attachments:
            for attachment in detail.get("attachments") or []:
                self.attach(attachment)
        return json.dumps(detail, ensure_ascii=False).encode() + b"\n"

    def attach(self, attachment: dict) -> None:
        limit = settings.EXPORT_MAX_MESSAGE_SIZE
        try:
            _, content = reading.attachment_content(self.account, attachment["id"], limit)
        except errors.MessageNotFound as exc:
            attachment["contentError"] = str(exc)
            return
        if len(content) > limit:
            attachment["contentError"] = f"Attachment larger than {limit} bytes"
            return
        attachment["content"] = base64.b64encode(content).decode("ascii")

    def progress(self, force: bool = False) -> None:
        """Write the counters (at most every ``PROGRESS_EVERY`` s unless forced): each write
        is the heartbeat the sweep looks at. ``Stopped`` when the export is no longer ours."""
        now = time.monotonic()
        if not force and now - self.written_at < PROGRESS_EVERY:
            return
        updated = Export.objects.filter(pk=self.export.pk, status=Export.Status.PROCESSING).update(
            phase=self.phase, heartbeat_at=timezone.now(), **self.counts)
        if not updated:
            raise Stopped
        self.written_at = now

    def complete(self) -> bool:
        export = self.export
        with transaction.atomic():
            done = Export.objects.filter(pk=export.pk, status=Export.Status.PROCESSING).update(
                status=Export.Status.COMPLETED, phase="complete", heartbeat_at=timezone.now(),
                **self.counts)
            if not done:
                ExportChunk.objects.filter(export_id=export.pk).delete()
                return False
            events.record(export.tenant_id, events.EXPORT_COMPLETED, self.account.account_id, {
                "exportId": export.export_id, "folders": list(export.folders),
                "startDate": iso(export.start_date), "endDate": iso(export.end_date),
                "messagesExported": self.counts["messages_exported"],
                "messagesSkipped": self.counts["messages_skipped"],
                "bytesWritten": self.counts["bytes_written"],
                "duration": int((time.monotonic() - self.started) * 1000),
                "expiresAt": iso(export.expires_at)})
        return True


class _ChunkWriter(io.RawIOBase):
    """A file object that stores what is written into ``ExportChunk`` rows of ``CHUNK_SIZE``."""

    def __init__(self, export_pk: int):
        self.export_pk = export_pk
        self.buffer = bytearray()
        self.seq = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += data
        while len(self.buffer) >= CHUNK_SIZE:
            self._store(bytes(self.buffer[:CHUNK_SIZE]))
            del self.buffer[:CHUNK_SIZE]
        return len(data)

    def flush_chunk(self) -> None:
        if self.buffer:
            self._store(bytes(self.buffer))
            self.buffer.clear()

    def _store(self, data: bytes) -> None:
        if not Export.objects.filter(pk=self.export_pk, status=Export.Status.PROCESSING).exists():
            raise Stopped
        ExportChunk.objects.create(export_id=self.export_pk, seq=self.seq, data=data)
        self.seq += 1


def resolve_folders(account: EmailAccount, asked: list[str]) -> list[Folder]:
    """The indexed folders an export reads: *asked* by path or special use (``\\Sent``), in
    that order, unknown ones left out (as EmailEngine, which fails to list them and goes on);
    none asked: every selectable folder but Junk and Trash."""
    folders = Folder.objects.filter(email_account=account, no_select=False).order_by("path")
    if not asked:
        return [folder for folder in folders if folder.special_use not in SKIPPED_BY_DEFAULT]
    by_path = {folder.path: folder for folder in folders}
    by_use = {folder.special_use: folder for folder in folders if folder.special_use}
    chosen: dict[int, Folder] = {}
    for name in asked:
        folder = by_use.get(name) if name.startswith("\\") else by_path.get(name)
        if folder is not None:
            chosen.setdefault(folder.pk, folder)
    return list(chosen.values())


def _in_range(folder: Folder, export: Export):
    return (Message.objects.filter(folder=folder)
            .annotate(when=Coalesce("internal_date", "date"))
            .filter(when__gte=export.start_date, when__lt=export.end_date)
            .order_by("when", "uid"))


def fail(pk: int, error: str, code: str | None = None) -> bool:
    """Mark a queued or processing export failed, drop its file, record ``exportFailed``;
    False when it was neither (done, failed already, or deleted)."""
    with transaction.atomic():
        export = (Export.objects.select_for_update().select_related("email_account")
                  .filter(pk=pk, status__in=ACTIVE).first())
        if export is None:
            return False
        export.status, export.error = Export.Status.FAILED, error
        export.save(update_fields=["status", "error"])
        ExportChunk.objects.filter(export=export).delete()
        events.record(export.tenant_id, events.EXPORT_FAILED, export.email_account.account_id, {
            "exportId": export.export_id, "error": error, "errorCode": code,
            "phase": export.phase or "pending", "messagesExported": export.messages_exported,
            "messagesQueued": export.messages_queued})
    return True


# --- rq: enqueueing and the sweep ---------------------------------------------------------


def _queue():
    import django_rq

    return django_rq.get_queue(QUEUE)


def job_id(export_id: str) -> str:
    return f"export-{export_id}"


def enqueue(export: Export) -> None:
    _queue().enqueue_call(run_export, args=(export.pk,), job_id=job_id(export.export_id),
                          result_ttl=0, failure_ttl=24 * 3600,
                          timeout=settings.EXPORT_JOB_TIMEOUT)


def enqueue_quietly(export: Export) -> None:
    """``enqueue`` after the create commits: if Redis is down, the sweep enqueues it later."""
    try:
        enqueue(export)
    except Exception as exc:  # noqa: BLE001 - the export is safe in PostgreSQL
        logger.warning("could not enqueue export %s (the sweep will): %s", export.export_id, exc)


def _cancel_job(export_id: str) -> None:
    rq_jobs.delete_waiting(job_id(export_id), _queue().connection)


def _job_status(export_id: str, connection) -> str | None:
    return rq_jobs.status(job_id(export_id), connection)


def sweep() -> dict[str, int]:
    """One pass of upkeep; how many exports it expired, failed as stale and enqueued again."""
    now = timezone.now()
    expired = list(Export.objects.filter(expires_at__lte=now).values_list("pk", flat=True))
    if expired:
        ExportChunk.objects.filter(export_id__in=expired).delete()
        Export.objects.filter(pk__in=expired).delete()
    stale_before = now - timedelta(seconds=settings.EXPORT_STALE_AFTER)
    stale = 0
    for pk in Export.objects.filter(status=Export.Status.PROCESSING,
                                    heartbeat_at__lt=stale_before).values_list("pk", flat=True):
        stale += fail(pk, "Export interrupted: its worker stopped (no progress for "
                          f"{settings.EXPORT_STALE_AFTER} seconds)")
    queue = _queue()
    requeued = 0
    for export in Export.objects.filter(status=Export.Status.QUEUED,
                                        created_at__lt=now - timedelta(seconds=5)):
        if _job_status(export.export_id, queue.connection) not in _LIVE_JOB:
            enqueue(export)
            requeued += 1
    return {"expired": len(expired), "stale": stale, "requeued": requeued}

