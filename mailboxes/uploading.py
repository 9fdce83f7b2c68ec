"""Uploading a message into a folder (``POST .../message``): compose, APPEND, index.

The message is built by ``mailboxes.compose`` (structured fields, or ``raw`` as given; the
attachments it references read from the server first, ``mailboxes.attachment_references``) and
appended with the caller's flags. An uploaded draft keeps its Bcc header (EmailEngine does
too), so it can be sent later with all its recipients. The new UID (UIDPLUS APPENDUID, else a
search for the Message-ID) is fetched at once the way the worker fetches new mail and indexed
with one ``messageNew``: the next listing shows it, and the worker, finding the UID indexed,
raises nothing more. That FETCH's answer also gives the message's sequence number
(EmailEngine's ``seq``), so the answer carries it without another command.
"""

from __future__ import annotations

from datetime import datetime

from accounts.models import EmailAccount
from mailboxes import attachment_references, errors, ids, message_writes
from mailboxes.command_pool import pool
from mailboxes.compose import compose
from mailboxes.imap import append as imap_append
from mailboxes.imap.message_ops import BadFlag, check_flags
from mailboxes.models import Folder
from mailboxes.sync import index, reports


def upload(account: EmailAccount, path: str, fields: dict, flags: list[str],
           internal_date: datetime | None, room: int | None = None) -> dict:
    """EmailEngine's upload answer ``{id, path, uid, uidValidity, seq, messageId}`` (``seq``
    only when the indexing FETCH read it) plus ``referenceFound`` (whether a given
    ``reference`` was found: False only with its ``ignoreMissing``, for the caller's
    ``reference.success``). *room*: bytes the referenced attachments may add
    (``attachment_references``)."""
    try:
        flags = check_flags(flags)
    except BadFlag as exc:
        raise errors.InvalidFlag(exc) from None
    folder = message_writes.destination(account, path)  # 404 naming it when unknown
    fields = attachment_references.with_contents(account, fields, room)
    composed = compose(account, fields, for_sending=False)
    with pool.session(account) as session:
        try:
            appended = imap_append.append_message(session.client, folder.path, composed.raw,
                                                  flags, internal_date)
        except imap_append.FolderMissing:
            raise errors.MailboxNotFound(path) from None
        except imap_append.WriteError as exc:
            raise message_writes.change_refused(exc) from None
        uid = appended.uid
        if uid is None:  # no UIDPLUS: the newest message with this Message-ID
            session.open(folder.path, refresh=True)
            uid = imap_append.find_by_message_id(session.client, composed.message_id,
                                                 above=(folder.uidnext or 1) - 1)
        seq = None
        if uid is not None and _same_folder(folder, appended.uidvalidity):
            seq = _index_new(session, folder, uid)
    answer = {
        "id": ids.message_id_for(folder, uid) if uid is not None else None,
        "path": folder.path, "uid": uid,
        "uidValidity": str(appended.uidvalidity or folder.uidvalidity or "") or None,
        "messageId": composed.message_id or None,
        "referenceFound": composed.reference is not None,
    }
    if seq is not None:
        answer["seq"] = seq
    return answer


def _same_folder(folder: Folder, uidvalidity: int | None) -> bool:
    """The UID belongs to the folder the index knows (not one recreated under its name,
    which the worker will reindex under a new number)."""
    return uidvalidity is None or folder.uidvalidity is None or \
        uidvalidity == folder.uidvalidity


def _index_new(session, folder: Folder, uid: int) -> int | None:
    """Fetch the message's metadata as the worker would and index it (``messageNew``).
    Returns its sequence number, which that FETCH's answer carries (EmailEngine's ``seq``,
    at no extra round trip); None if the message is gone already."""
    session.open(folder.path, refresh=True)
    metas = session.fetch_meta(str(uid))
    if not metas:
        return None
    index.record_append(folder, metas[0], reports.read_reports(session, folder, metas))
    return metas[0].seq
