"""Reading message content from the server on demand: bodies, headers, raw source, parts.

The index says where a message is (folder, UID) and what its parts are (from BODYSTRUCTURE);
this module fetches only what a request needs over a pooled command connection
(``mailboxes.command_pool``), always with BODY.PEEK so reading never changes a flag, and
streams large content in bounded chunks instead of holding it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from functools import lru_cache

from accounts.models import EmailAccount
from mailboxes import auto_reply, bounces, errors, listing, message_fields, web_html
from mailboxes.command_pool import pool
from mailboxes.imap import parts
from mailboxes.imap.types import FlagChange
from mailboxes.models import Folder, Message
from mailboxes.sync import gmail, index

HEADER_LIMIT = 256 * 1024


@dataclass(frozen=True)
class HtmlOptions:
    """EmailEngine's HTML query parameters. ``web_safe`` (``preProcessHtml``): the HTML
    sanitised, or made from the plain text when there is none (``text.webSafe: true``);
    ``embed_images`` (``embedAttachedImages``): ``cid:`` images as ``data:`` URIs."""

    web_safe: bool = False
    embed_images: bool = False


# Images larger than this (encoded) stay as cid: URLs; so do any beyond the total.
EMBED_IMAGE_LIMIT = 5 * 1024 * 1024
EMBED_TOTAL_LIMIT = 20 * 1024 * 1024


def message_detail(account: EmailAccount, message_id: str, text_type: str, max_bytes: int,
                   mark_as_seen: bool, with_headers: bool,
                   html: HtmlOptions = HtmlOptions(),  # noqa: B008 - frozen
                   with_bounces: bool = False) -> dict:
    """``GET .../message/{id}``'s answer; ``with_bounces`` adds EmailEngine's ``bounces``
    (the route's, not a webhook's read of the text)."""
    folder, row = listing.message_by_id(account, message_id)
    detail = indexed_message_detail(account, folder, row, text_type, max_bytes, mark_as_seen,
                                    with_headers, html, message_id)
    found = bounces.of_message(account.pk, account.has_bounces, row.message_id) \
        if with_bounces else []
    if found:
        detail["bounces"] = found
    return detail


def indexed_message_detail(account: EmailAccount, folder: Folder, row: Message, text_type: str,
                           max_bytes: int, mark_as_seen: bool, with_headers: bool,
                           html: HtmlOptions = HtmlOptions(),  # noqa: B008 - frozen
                           message_id: str | None = None) -> dict:
    """``message_detail`` of a message already found in the index (an export walks the
    index's rows); ``MessageNotFound`` when the server no longer has it."""
    message_id = message_id if message_id is not None else str(row.uid)
    encoded = _encoded_attachments(row)
    # The header and the attachments whose decoded size is counted come with the text, in
    # one FETCH: each round trip to the server is a good part of this route's time.
    also = {section: None for section in parts.sizes_fetched_whole(encoded)}
    if with_headers:
        also["HEADER"] = HEADER_LIMIT
    with pool.session(account) as session:
        try:
            text, fetched = _read_text(session, folder, row, text_type, max_bytes, html, also)
            headers = _parsed_headers(fetched["HEADER"]) if with_headers else None
            sizes = parts.decoded_sizes(session.client, row.uid, encoded, fetched)
        except parts.MessageNotFound:
            raise errors.MessageNotFound(f"Message {message_id!r} not found") from None
        if mark_as_seen and "\\Seen" not in row.flags:
            _mark_seen(session, folder, row)
    detail = message_fields.summary(folder, row)
    for entry, part in zip(detail["attachments"], row.attachments, strict=True):
        entry["size"] = sizes.get(part["part"], entry["encodedSize"])
    detail.update(references=list(row.references), specialUse=folder.special_use or None,
                  text={**detail["text"], **_web_safe(text, html.web_safe)})
    if headers is not None:
        detail["headers"] = headers
    # EmailEngine's flag, only when true; without the headers (headers=false) the subject
    # decides alone.
    if auto_reply.is_auto_reply(detail.get("subject"), detail.get("inReplyTo"), headers):
        detail["isAutoReply"] = True
    return detail


def message_text(account: EmailAccount, text_id: str, text_type: str, max_bytes: int,
                 html: HtmlOptions = HtmlOptions()) -> dict:  # noqa: B008 - frozen
    """EmailEngine's ``GET .../text/{textId}``: the bodies a listing's ``text.id`` names."""
    folder, row = listing.message_by_text_id(account, text_id)
    with pool.session(account) as session:
        try:
            text, _ = _read_text(session, folder, row, text_type, max_bytes, html, {})
        except parts.MessageNotFound:
            raise errors.MessageNotFound(f"Text {text_id!r} not found") from None
    return _web_safe(text, html.web_safe)


def _read_text(session, folder: Folder, row: Message, text_type: str, max_bytes: int,
               html: HtmlOptions, also: dict[str, int | None]) -> tuple[dict, dict[str, bytes]]:
    """The message's text parts from the server (``parts.MessageNotFound`` if it is gone),
    its ``cid:`` images embedded when asked, and the raw sections *also* names
    (``parts.fetch_text_and``)."""
    text, fetched = _in_current_view(session, folder.path, lambda: parts.fetch_text_and(
        session.client, row.uid, list(row.text_parts), text_type, max_bytes, also))
    if html.embed_images and text.get("html"):
        text["html"] = _embedded(session.client, row, text["html"])
    return text, fetched


def _encoded_attachments(row: Message) -> dict[str, tuple[str | None, int]]:
    """The attachments whose exact decoded size must be counted (by section: encoding and
    encoded size): listings only know the encoded size (and show ``size`` as an estimate);
    a single message shows what a download gives."""
    return {part["part"]: (part.get("encoding"), part.get("size") or 0)
            for part in row.attachments
            if (part.get("encoding") or "").lower() not in ("", "7bit", "8bit", "binary")}


def _embedded(client, row: Message, html: str) -> str:
    """*html* with the message's own images that its ``cid:`` URLs name as ``data:`` URIs
    (each fetched by section and decoded; too large ones stay ``cid:``)."""
    wanted = web_html.referenced_cids(html)
    images: dict[str, tuple[str, bytes]] = {}
    budget = EMBED_TOTAL_LIMIT
    for part in row.attachments:
        cid, size = part.get("contentId"), part.get("size") or 0
        if cid not in wanted or cid in images or size > min(EMBED_IMAGE_LIMIT, budget):
            continue
        budget -= size
        raw = parts.fetch_section(client, row.uid, part["part"])
        images[cid] = (part.get("contentType") or "application/octet-stream",
                       parts.decode_transfer(raw, part.get("encoding")))
    return web_html.embed_images(html, images)


def _web_safe(text: dict, web_safe: bool) -> dict:
    if not web_safe:
        return text
    if text.get("html") or text.get("plain"):
        text["html"] = web_html.web_safe(text.get("html"), text.get("plain"))
    text["webSafe"] = True
    return text


def _in_current_view(session, path: str, fetch):
    """Run ``fetch`` (which raises ``parts.MessageNotFound`` for an unknown UID) on *path*.

    A pooled connection that has the folder selected skips the NOOP that would refresh its
    view (Dovecot flushes its cache on it: ~12 ms); only when the UID is unknown, perhaps
    newer than that view, does it refresh and try once more."""
    reused = session.open(path, refresh=False)
    try:
        return fetch()
    except parts.MessageNotFound:
        if not reused:
            raise
    session.open(path, refresh=True)
    return fetch()


def _parsed_headers(raw: bytes) -> dict[str, list[str]]:
    # compat32 splits the fields as policy.default does, without parsing the Content-Type
    # the parser looks at when it closes (unbounded with policy.default); each field is
    # decoded by _header_text, the structured ones within one message's budget
    # (``parts.MAX_STRUCTURED_FIELDS`` characters: each field is bounded, their number not).
    message = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
    out: dict[str, list[str]] = {}
    budget = parts.MAX_STRUCTURED_FIELDS
    for name, value in message.raw_items():
        structured = parts.structured_field(name)
        if structured and budget < len(value):
            text = parts.raw_header_text(value)
        elif len(value) <= HEADER_MEMO_CHARS:
            text = _header_text(name, value)
        else:
            text = parts.header_text(name, value)
        budget -= len(value) if structured else 0
        out.setdefault(name.lower(), []).append(text)
    return out


# The email package's header parsing (addresses, dates, encoded words) was most of a single
# message's CPU time (issue 19). A header's text is a pure function of its name and raw
# value, and the same From, To, Cc and Content-Type lines come back message after message:
# short ones are remembered per process.
HEADER_MEMO_CHARS = 2048


# A sender's field the email package could not parse in bounded time (a 50 KB To took it 18 s,
# comments nested thousands deep were a RecursionError) is shown by our own decoder.
_header_text = lru_cache(maxsize=4096)(parts.header_text)


def _mark_seen(session, folder: Folder, row: Message) -> None:
    """STORE +FLAGS \\Seen, then the index at once (read-your-writes, one messageUpdated)."""
    session.open_writable(folder.path)
    session.client.add_flags([row.uid], [b"\\Seen"], silent=True)
    flags = tuple(dict.fromkeys([*row.flags, "\\Seen"]))
    index.apply_flag_changes(folder, [FlagChange(uid=row.uid, flags=flags, modseq=None)],
                             announcing=gmail.announcing(folder, session.gmail))
    row.flags = list(flags)


class Download:
    """A part or the raw source, ready to stream: metadata known, content not yet read.

    ``chunks()`` must be consumed (or ``close()`` called): it holds a pooled connection until
    the last chunk, and gives it back however the consumer stops.
    """

    def __init__(self, account: EmailAccount, folder: Folder, uid: int, section: str,
                 encoding: str | None, content_type: str, filename: str | None,
                 length: int | None, local: bool = False):
        """*local*: the message is one the server could not split, whose part *section* is
        found by parsing its source here (``parts.local_part``), not fetched by number."""
        self.account, self.folder, self.uid, self.section = account, folder, uid, section
        self.encoding, self.content_type, self.filename = encoding, content_type, filename
        self.length, self.local = length, local
        self._context = None

    def open(self) -> Download:
        """Take a connection and check the message is still there (so a 404 is a 404)."""
        self._context = pool.session(self.account)
        session = self._context.__enter__()
        try:
            try:
                size = _in_current_view(session, self.folder.path,
                                        lambda: self._size(session))
                if self.local:  # parsed before the answer starts: a missing part is a 404
                    self._content = parts.local_part(session.client, self.uid, self.section)
            except parts.MessageNotFound:
                raise errors.MessageNotFound() from None
            if not self.section:
                self.length = size
            if self.local:
                if self._content is None:  # the source no longer has it
                    raise errors.MessageNotFound()
                self.length = len(self._content)
        except BaseException as exc:
            self.close(exc)
            raise
        self._session = session
        return self

    def _size(self, session) -> int:
        size = parts.source_size(session.client, self.uid)
        if size is None:
            raise parts.MessageNotFound(self.uid)
        return size

    def chunks(self) -> Iterator[bytes]:
        try:
            if self.local:
                yield self._content
                self.close()
                return
            raw = parts.stream_section(self._session.client, self.uid, self.section)
            yield from parts.decode_stream(raw, self.encoding) if self.encoding else raw
        except BaseException as exc:
            self.close(exc)
            raise
        self.close()

    def close(self, exc: BaseException | None = None) -> None:
        """Give the connection back (or drop it after an error); safe to call twice."""
        context, self._context = self._context, None
        if context is not None:
            context.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)


def source_download(account: EmailAccount, message_id: str) -> Download:
    folder, row = listing.message_by_id(account, message_id)
    return Download(account, folder, row.uid, "", None, "message/rfc822", None, row.size).open()


def attachment_download(account: EmailAccount, attachment_id: str) -> Download:
    folder, row, part = listing.attachment_by_id(account, attachment_id)
    encoding = (part.get("encoding") or "").lower() or None
    length = part.get("size") if encoding in (None, "7bit", "8bit", "binary") else None
    return Download(account, folder, row.uid, part["part"], encoding,
                    part.get("contentType") or "application/octet-stream",
                    part.get("filename"), length,
                    local=parts.is_unsplit(row.text_parts)).open()


def attachment_content(account: EmailAccount, attachment_id: str,
                       max_bytes: int) -> tuple[Download, bytes]:
    """An attachment's decoded bytes, held (a message being composed takes them in:
    ``attachments[].reference``), with the download that names its type and filename.

    Reading stops once more than ``max_bytes`` have come: a longer result says the attachment
    is larger than that (its rest is never read from the server). 404 as
    ``attachment_download``, and ``MessageNotFound`` too when the message goes from the server
    while it is being read."""
    download = attachment_download(account, attachment_id)
    chunks = download.chunks()
    kept: list[bytes] = []
    size = 0
    try:
        for chunk in chunks:
            kept.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                break
    except parts.MessageNotFound:
        raise errors.MessageNotFound(f"Attachment {attachment_id!r} not found") from None
    finally:
        chunks.close()  # a download left part-way gives its connection back here
        download.close()  # and one never started, here
    return download, b"".join(kept)
