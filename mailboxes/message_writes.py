"""Changing messages through the API: flags, Gmail labels, move, copy, delete, one at a time
or in bulk.

Each change is made on the server first (``mailboxes.imap.message_ops``, over a pooled command
connection), then recorded in the index at once (``index.record_transfer`` and friends) so
the next GET shows it, with the events another client's change would raise, once.

A message the index knows but the server no longer has (expunged meanwhile) is a 404 and
nothing else is touched: the server's answer (no FETCH for a STORE, no COPYUID for a MOVE)
says so without an extra round trip.
"""

from __future__ import annotations

import imaplib
from dataclasses import dataclass

from accounts.models import EmailAccount
from emailapi.lib.wording import describe
from mailboxes import errors, ids, index_search, listing
from mailboxes.command_pool import pool
from mailboxes.imap import fetch, message_ops, search
from mailboxes.imap.types import FlagChange
from mailboxes.models import Folder
from mailboxes.sync import gmail, index


def change_refused(exc: Exception) -> errors.ServerRefused:
    """The server's refusal of a STORE, COPY, MOVE, EXPUNGE or APPEND, in words."""
    return errors.ServerRefused(f"The server refused the change: {describe(exc)}")


@dataclass(frozen=True)
class FlagEdit:
    add: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    set: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, data: dict | None) -> FlagEdit:
        try:
            return cls._checked(data, message_ops.check_flags)
        except message_ops.BadFlag as exc:
            raise errors.InvalidFlag(exc) from None

    def __bool__(self) -> bool:
        return bool(self.add or self.delete or self.set is not None)

    @classmethod
    def parse_labels(cls, data: dict | None) -> FlagEdit:
        """The same edit of Gmail labels (``check_labels``: quoted strings, not atoms)."""
        try:
            return cls._checked(data, message_ops.check_labels)
        except message_ops.BadLabel as exc:
            raise errors.InvalidLabel(exc) from None

    @classmethod
    def _checked(cls, data: dict | None, check) -> FlagEdit:
        data = data or {}
        return cls(add=tuple(check(data.get("add") or ())),
                   delete=tuple(check(data.get("delete") or ())),
                   set=tuple(check(data["set"])) if "set" in data else None)

    def answer(self) -> dict:
        """EmailEngine's ``{"flags": {"add": true, ...}}``: which parts were applied."""
        out = {}
        if self.set is not None:
            out["set"] = True
        else:
            if self.add:
                out["add"] = True
            if self.delete:
                out["delete"] = True
        return out


def _missing(account: EmailAccount, message_id: str) -> errors.MessageNotFound:
    return errors.MessageNotFound(f"Message {message_id!r} not found")


def destination(account: EmailAccount, path: str) -> Folder:
    """A destination folder by path or special use; 404 naming it when unknown."""
    folder = listing.folder_for_path(account, path)
    if folder.no_select:
        raise errors.MailboxNotSelectable(path)
    return folder


# --- flags ----------------------------------------------------------------------------------


def _store(session, folder: Folder, uids: list[int], edit: FlagEdit) -> dict[int, tuple]:
    """STORE the edit; the current flags of every UID that still exists."""
    session.open_writable(folder.path)
    try:
        found = message_ops.store_flags(session.client, uids, edit.add, edit.delete, edit.set)
    except message_ops.WriteError as exc:
        raise change_refused(exc) from None
    unanswered = [uid for uid in uids if uid not in found]
    if unanswered:  # a server that sends no FETCH for an unchanged flag: ask
        for batch in message_ops.batches(unanswered):
            current, _ = fetch.fetch_flags(session.client, ",".join(map(str, batch)))
            found.update({c.uid: c.flags for c in current})
    return found


def _store_labels(session, folder: Folder, uids: list[int],
                  edit: FlagEdit) -> dict[int, tuple]:
    """Gmail: STORE X-GM-LABELS; the current labels of every UID that still exists."""
    session.open_writable(folder.path)
    try:
        found = message_ops.store_labels(session.client, uids, edit.add, edit.delete, edit.set)
    except message_ops.WriteError as exc:
        raise change_refused(exc) from None
    unanswered = [uid for uid in uids if uid not in found]
    if unanswered:  # a server that sends no FETCH for unchanged labels: ask
        for batch in message_ops.batches(unanswered):
            current, _ = fetch.fetch_flags(session.client, ",".join(map(str, batch)),
                                           labels=True)
            found.update({c.uid: c.labels or () for c in current})
    return found


def _index_flags(folder: Folder, found: dict[int, tuple],
                 labelled: dict[int, tuple] | None = None,
                 announcing: gmail.Announcing = gmail.EVERY_CHANGE) -> int:
    """Index the flags (and Gmail labels) the server reported after a STORE."""
    labelled = labelled or {}
    changed = 0
    items = sorted(set(found) | set(labelled))
    for start in range(0, len(items), message_ops.BATCH):
        changed += index.apply_flag_changes(folder, [
            FlagChange(uid=uid, flags=tuple(found[uid]) if uid in found else None,
                       modseq=None,
                       labels=tuple(labelled[uid]) if uid in labelled else None)
            for uid in items[start:start + message_ops.BATCH]], announcing=announcing)
    return changed


def _labels_possible(session, edit: FlagEdit) -> None:
    if edit and not session.gmail:
        raise errors.LabelsUnsupported()


def _answer(edit: FlagEdit, label_edit: FlagEdit) -> dict:
    """EmailEngine's ``{"flags": {"add": true}, "labels": {"delete": true}}``."""
    out = {}
    if edit:
        out["flags"] = edit.answer()
    if label_edit:
        out["labels"] = label_edit.answer()
    return out


def update_message(account: EmailAccount, message_id: str, flags: dict | None,
                   labels: dict | None) -> dict:
    edit = FlagEdit.parse(flags)
    label_edit = FlagEdit.parse_labels(labels)
    folder, row = listing.message_by_id(account, message_id)
    with pool.session(account) as session:
        _labels_possible(session, label_edit)
        found = _store(session, folder, [row.uid], edit) if edit else {}
        if edit and row.uid not in found:
            raise _missing(account, message_id)
        labelled = _store_labels(session, folder, [row.uid], label_edit) if label_edit else {}
        if label_edit and row.uid not in labelled:
            raise _missing(account, message_id)
        announcing = gmail.announcing(folder, session.gmail)
    if found or labelled:
        _index_flags(folder, found, labelled, announcing)
    return _answer(edit, label_edit)


# --- move, copy, delete ---------------------------------------------------------------------


def _transfer(account, folder, uids, target, keep_source: bool, use_move=None):
    """COPY or MOVE on the server, then the index; returns the server's uid map."""
    with pool.session(account) as session:
        session.open_writable(folder.path)
        try:
            if keep_source:
                transfer = message_ops.copy(session.client, uids, target.path)
            else:
                transfer = message_ops.move(session.client, uids, target.path, use_move)
        except message_ops.FolderMissing:
            raise errors.MailboxNotFound(target.path) from None
        except message_ops.WriteError as exc:
            raise change_refused(exc) from None
        uidplus = session.has("UIDPLUS")
    if transfer.uidvalidity and target.uidvalidity and transfer.uidvalidity != target.uidvalidity:
        return transfer, uidplus  # the destination was recreated: its next sync reindexes
    index.record_transfer(folder, target, transfer.uid_map, keep_source)
    return transfer, uidplus


def transfer_message(account: EmailAccount, message_id: str, path: str,
                     keep_source: bool) -> dict:
    folder, row = listing.message_by_id(account, message_id)
    target = destination(account, path)
    if target.pk == folder.pk and not keep_source:
        raise errors.SameMailbox("The message is already in that mailbox")
    transfer, uidplus = _transfer(account, folder, [row.uid], target, keep_source)
    new_uid = transfer.uid_map.get(row.uid)
    if new_uid is None and uidplus:
        raise _missing(account, message_id)  # the server had nothing to move
    return {"path": target.path, "id": ids.message_id_for(target, new_uid) if new_uid else None,
            "uid": new_uid}


def trash_of(account: EmailAccount) -> Folder | None:
    return (Folder.objects.filter(email_account=account, special_use="\\Trash", no_select=False)
            .order_by("pk").first())


def delete_message(account: EmailAccount, message_id: str, force: bool) -> dict:
    """To Trash, or (``force``, already in Trash, no Trash) expunge that one UID."""
    folder, row = listing.message_by_id(account, message_id)
    trash = trash_of(account)
    if not force and trash is not None and trash.pk != folder.pk:
        moved = transfer_message(account, message_id, trash.path, keep_source=False)
        return {"deleted": False,
                "moved": {"destination": trash.path, "message": moved["id"], "uid": moved["uid"]}}
    if not _expunge(account, folder, [row.uid]):
        raise _missing(account, message_id)
    return {"deleted": True}


def _expunge(account: EmailAccount, folder: Folder, uids: list[int]) -> list[int]:
    """Expunge these UIDs (those the server still has); index them; return which."""
    with pool.session(account) as session:
        found = _store(session, folder, uids, FlagEdit(add=("\\Deleted",)))
        present = sorted(found)
        try:
            message_ops.expunge(session.client, present)
        except message_ops.WriteError as exc:
            raise change_refused(exc) from None
    index.record_expunge(folder, present)
    return present


# --- bulk -----------------------------------------------------------------------------------


def matching_uids(account: EmailAccount, folder: Folder, criteria: dict | None,
                  message_ids: list[str] | None) -> list[int]:
    """The UIDs a bulk request means: a server-side search, or a list of ids of this folder
    (an id of another folder or account is a 400 naming it, before anything changes)."""
    if message_ids is not None:
        uids = []
        for message_id in message_ids:
            try:
                ref = ids.parse_message_id(ids.key(), account.pk, message_id)
            except ids.InvalidId:
                ref = None
            if ref is None or ref.folder_number != folder.number:
                raise errors.MessageNotInMailbox(message_id, folder.path)
            uids.append(ref.uid)
        return sorted(set(uids))
    resolve = index_search.id_resolver(folder, criteria or {})
    with pool.session(account) as session:
        try:
            return session.run_current(
                folder.path, lambda: search.uid_search(session.client, criteria or {},
                                                       resolve=resolve))
        except search.MissingExtension as exc:
            raise errors.SearchUnsupported(f"search.{exc.path}", exc.message,
                                           exc.extension) from None
        except search.InvalidSearch as exc:
            raise errors.InvalidInput(f"Invalid search: {exc.message}",
                                      {exc.path or "search": [exc.message]}) from None
        except imaplib.IMAP4.abort:
            raise  # the connection is gone: the pool's own error
        except imaplib.IMAP4.error as exc:  # a tagged NO/BAD; the connection stays usable
            raise errors.SearchRefused(str(exc).removeprefix("UID SEARCH failed: ")) from None


def bulk_update(account, folder, uids: list[int], flags: dict | None,
                labels: dict | None = None) -> dict:
    edit = FlagEdit.parse(flags)
    label_edit = FlagEdit.parse_labels(labels)
    if not edit and not label_edit:
        raise errors.InvalidInput("update.flags or update.labels needs add, delete or set")
    found, labelled = {}, {}
    announcing = gmail.EVERY_CHANGE
    with pool.session(account) as session:
        _labels_possible(session, label_edit)
        if uids and edit:
            found = _store(session, folder, uids, edit)
        if uids and label_edit:
            labelled = _store_labels(session, folder, uids, label_edit)
        announcing = gmail.announcing(folder, session.gmail)
    changed = _index_flags(folder, found, labelled, announcing)
    return {**_answer(edit, label_edit), "matched": len(uids),
            "updated": len(set(found) | set(labelled)), "changed": changed}


def bulk_move(account, folder, uids: list[int], path: str) -> dict:
    target = destination(account, path)
    if target.pk == folder.pk:
        raise errors.SameMailbox("The messages are already in that mailbox")
    transfer = _transfer(account, folder, uids, target, keep_source=False)[0] if uids else None
    uid_map = transfer.uid_map if transfer else {}
    return {"path": target.path, "matched": len(uids), "moved": len(uid_map),
            "idMap": [[ids.message_id_for(folder, old), ids.message_id_for(target, new)]
                      for old, new in sorted(uid_map.items())]}


def bulk_delete(account, folder, uids: list[int], force: bool) -> dict:
    trash = trash_of(account)
    if not force and trash is not None and trash.pk != folder.pk:
        moved = bulk_move(account, folder, uids, trash.path)
        # ``destination``: EmailEngine's name for where they went (``path`` is ours)
        return {"deleted": False, "matched": len(uids),
                "moved": {"destination": moved["path"], **moved}}
    present = _expunge(account, folder, uids) if uids else []
    return {"deleted": True, "matched": len(uids), "expunged": len(present)}
