"""Reading the bounces and complaints among a batch of new messages, before it is indexed.

Runs between the FETCH of a batch's metadata and the transaction that indexes it (never inside
it: no I/O in a transaction), for new mail of the INBOX and of the Junk folder, where
EmailEngine looks for them too (a spam filter files many a bounce there). Which
messages are reports is decided from their metadata (``mailboxes.feedback_reports``): an
ordinary message sends no command, and the reports of a batch that need the same parts read
(a DSN's status and headers, say) are read together, in one ``UID FETCH`` of up to
``REPORTS_PER_FETCH`` of them: a bounce storm does not put a round trip per report before the
batch's ``messageNew``. What they say goes to ``index.add_messages``, which stores it and
records ``messageBounce`` / ``messageComplaint`` with the message's ``messageNew``.
"""

from __future__ import annotations

import imaplib
import logging
from collections.abc import Sequence

from mailboxes import feedback_reports
from mailboxes.imap import parts
from mailboxes.imap.session import ImapSession
from mailboxes.imap.types import MessageMeta
from mailboxes.models import Folder

logger = logging.getLogger(__name__)

# The folders (by special use) whose new mail may be a report, as EmailEngine's.
REPORT_FOLDERS = frozenset({"\\Inbox", "\\Junk"})
# Reports read in one FETCH: its answer is at most this many times the parts' PART_LIMITs
# (25 x 3 x 64 KiB, under 5 MiB: a report reads at most three parts), however many reports a
# batch of new mail holds.
REPORTS_PER_FETCH = 25


def read_reports(session: ImapSession, folder: Folder,
                 metas: Sequence[MessageMeta]) -> dict[int, feedback_reports.Report]:
    """UID -> what each report among ``metas`` says (reports that say nothing usable left out)."""
    if folder.special_use not in REPORT_FOLDERS:
        return {}
    alike: dict[tuple, list[tuple[MessageMeta, list[feedback_reports.Section]]]] = {}
    for meta in metas:
        sections = feedback_reports.sections_to_read(meta.attachments, meta.text_parts,
                                                     meta.from_, meta.subject)
        if sections:
            alike.setdefault(tuple((s.section, s.limit) for s in sections), []).append(
                (meta, sections))
    found = {}
    for wanted, reports in alike.items():
        for start in range(0, len(reports), REPORTS_PER_FETCH):
            some = reports[start:start + REPORTS_PER_FETCH]
            raws = _fetch(session, folder, [meta.uid for meta, _ in some], dict(wanted))
            for meta, sections in some:
                if meta.uid not in raws:
                    continue  # expunged meanwhile (nothing to announce), or refused
                try:
                    report = _report(meta, sections, raws[meta.uid])
                except Exception:  # noqa: BLE001 - a report we cannot read must not stop the
                    # mail behind it: the batch is retried whole on an error, and would fail
                    # again forever.
                    logger.exception("report of UID %s in %s not parsed", meta.uid, folder.path)
                    continue
                if report:
                    found[meta.uid] = report
    return found


def _fetch(session: ImapSession, folder: Folder, uids: list[int],
           sections: dict[str, int]) -> dict[int, dict[str, bytes]]:
    """The report parts of ``uids`` (uid -> section -> bytes), those the server answered for."""
    try:
        return parts.fetch_sections_of(session.client, uids, sections)
    except (imaplib.IMAP4.error, ValueError) as exc:
        if isinstance(exc, imaplib.IMAP4.abort):
            raise  # the connection is gone: the pass fails and is retried whole
        if len(uids) > 1:  # one message's refusal must not cost the others their reports
            found = {}
            for uid in uids:
                found.update(_fetch(session, folder, [uid], sections))
            return found
        # A server refusing a section (a part number it disagrees with) loses this report,
        # not the batch's messageNew.
        logger.info("report parts of UID %s in %s not read: %s", uids[0], folder.path, exc)
        return {}


def _report(meta: MessageMeta, sections: list[feedback_reports.Section],
            raw: dict[str, bytes]) -> feedback_reports.Report:
    read = {}
    for section in sections:
        data = raw.get(section.section, b"")
        whole = len(data) < section.limit  # else cut at the limit: a split character dropped
        data = parts.decode_transfer(data, section.encoding, final=whole)
        read.setdefault(section.role, parts.decode_text(data, _charset(meta, section), whole))
    return feedback_reports.read_report(read, meta.from_)


def _charset(meta: MessageMeta, section: feedback_reports.Section) -> str | None:
    for part in (*meta.text_parts, *meta.attachments):
        if part.part == section.section:
            return part.charset
    return None
