"""A helper process that sanitizes messages' HTML for ``sanitize_pool``, one at a time, so
that the process asking can stop waiting, and kill it, when one takes too long.

html5ever (under nh3) can take seconds, and memory, growing with the square of a hostile
input's size (``html_clean``); a thread cannot be stopped in the middle of a Rust call, a
process can. Run as ``python -m mailboxes.sanitize_helper``: it imports nothing but the
sanitizer (no Django: about 13 MB), says it is ready, then answers requests until its input
ends (the process that started it closed it, or exited).

Its address space is limited (``MEMORY_LIMIT``): a sanitizer that would grow past it fails
here (the helper dies, or answers ``FAILED``), not in the machine. An answer larger than
``output_limit`` of the input is refused: sanitizing never makes HTML much larger, except
when a sender made the parser copy elements over and over.

Protocol, over stdin/stdout: a request is ``HEADER`` (its kind, the length of its payload)
then the HTML in UTF-8; the answer ``HEADER`` (``OK`` or ``FAILED``, the length) then the
sanitized HTML. ``READY`` is written once, after the imports.
"""

from __future__ import annotations

import os
import resource
import struct
import sys

from mailboxes import html_clean

MEMORY_LIMIT = 512 * 1024 * 1024
READY = b"R"
OK, FAILED = b"o", b"x"
HEADER = struct.Struct(">cI")
# What a request asks: the web-safe HTML of a message's HTML part (its thread history folded),
# the sanitizing alone, or the sanitizing with only the message's own images (or also remote).
WEB_SAFE, SANITIZE, OWN_IMAGES, REMOTE_IMAGES = b"w", b"s", b"i", b"r"
_JOBS = {
    WEB_SAFE: html_clean.web_safe,
    SANITIZE: html_clean.sanitize,
    OWN_IMAGES: lambda html: html_clean.images_limited(html, False),
    REMOTE_IMAGES: lambda html: html_clean.images_limited(html, True),
}


def output_limit(size: int) -> int:
    """The most characters an answer to *size* characters of HTML may have (links gain a
    ``rel``, quotes are added around values: well below this)."""
    return 8 * size + 1024 * 1024


def answer(kind: bytes, payload: bytes) -> tuple[bytes, bytes]:
    """The status and body answering one request."""
    try:
        html = payload.decode("utf-8", "surrogatepass")
        result = _JOBS[kind](html)
        if len(result) > output_limit(len(html)):
            return FAILED, b"the sanitized HTML is too large"
        return OK, result.encode("utf-8", "surrogatepass")
    except Exception as exc:  # noqa: BLE001 - any failure is answered, the caller falls back
        return FAILED, type(exc).__name__.encode()


def _read(stream, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def main() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    except (ValueError, OSError):
        pass  # a lower hard limit already applies
    # The answers go to the original stdout alone; anything printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    out.write(READY)
    out.flush()
    while (header := _read(requests, HEADER.size)) is not None:
        kind, size = HEADER.unpack(header)
        payload = _read(requests, size)
        if payload is None:
            return
        status, body = answer(kind, payload)
        out.write(HEADER.pack(status, len(body)) + body)
        out.flush()


if __name__ == "__main__":
    main()
