"""Sanitizing a message's HTML under a deadline, in helper processes (``sanitize_helper``)
that are killed when they take too long.

Why processes: html5ever's tree building (under nh3) costs time and memory growing with the
square of some inputs' size, whatever a pre-pass counts (``html_nesting`` bounds the depth,
but the parser also reopens formatting elements, and copies them into every list item). A
Rust call cannot be interrupted in a thread; a process can be killed, so no input holds a
web or dispatcher thread longer than the deadline (``HTML_SANITIZE_SECONDS``).

Each process that sanitizes (a daphne process, the webhook dispatcher) starts its own helpers
when it first needs one, at most ``HELPERS`` at a time (about 13 MB each when idle; their
address space is capped at ``sanitize_helper.MEMORY_LIMIT``), and keeps them for the next
messages. A thread waits at most the deadline for a free helper, then at most the deadline
for its answer; a helper past it is killed (and replaced when next needed). ``run`` answers
None then, or when the helper failed: the caller shows the message another way. A process
forked from one with helpers starts its own (a helper answers one process only).
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from mailboxes import sanitize_helper as helper_protocol

logger = logging.getLogger(__name__)

HELPERS = 2
DEFAULT_SECONDS = 2
# Starting a helper (an interpreter, nh3) takes about 50 ms; on a loaded machine much more.
# Not counted in the deadline: it happens once per helper, not per message.
STARTUP_SECONDS = 20
_ROOT = Path(__file__).resolve().parents[1]
_COMMAND = (sys.executable, "-m", "mailboxes.sanitize_helper")
_READ_SIZE = 1 << 16


class HelperFailed(Exception):
    """The helper did not answer in time, died, or could not start."""


def deadline_seconds() -> int:
    """``HTML_SANITIZE_SECONDS`` from the settings (the default outside Django)."""
    from django.conf import settings
    if not settings.configured:
        return DEFAULT_SECONDS
    return getattr(settings, "HTML_SANITIZE_SECONDS", DEFAULT_SECONDS)


class _Helper:
    """One helper process and its pipes; used by one thread at a time."""

    def __init__(self):
        self.process = subprocess.Popen(_COMMAND, cwd=_ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, bufsize=0)
        self._requests = self.process.stdin.fileno()
        self._answers = self.process.stdout.fileno()
        os.set_blocking(self._requests, False)
        try:
            self._receive(len(helper_protocol.READY), time.monotonic() + STARTUP_SECONDS)
        except HelperFailed:
            self.close()
            raise

    def ask(self, kind: bytes, html: str, seconds: float) -> str:
        """The helper's sanitized *html*; ``HelperFailed`` (the helper killed) when it does
        not answer within *seconds* or fails."""
        deadline = time.monotonic() + seconds
        payload = html.encode("utf-8", "surrogatepass")
        self._send(helper_protocol.HEADER.pack(kind, len(payload)) + payload, deadline)
        status, size = helper_protocol.HEADER.unpack(
            self._receive(helper_protocol.HEADER.size, deadline))
        body = self._receive(size, deadline)
        if status != helper_protocol.OK:
            raise HelperFailed(body.decode(errors="replace"))
        return body.decode("utf-8", "surrogatepass")

    def _send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            self._wait(self._requests, select.POLLOUT, deadline)
            try:
                written = os.write(self._requests, view)
            except BlockingIOError:
                continue
            except OSError as exc:  # the helper died: its end of the pipe is closed
                raise HelperFailed("the helper exited") from exc
            view = view[written:]

    def _receive(self, size: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        missing = size
        while missing:
            self._wait(self._answers, select.POLLIN, deadline)
            chunk = os.read(self._answers, min(missing, _READ_SIZE))
            if not chunk:
                raise HelperFailed("the helper exited")
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    @staticmethod
    def _wait(fd: int, event: int, deadline: float) -> None:
        poller = select.poll()
        poller.register(fd, event)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HelperFailed("the helper did not answer in time")
            if poller.poll(remaining * 1000):
                return  # ready, or the other end closed (the read or write says which)

    def close(self) -> None:
        """Kill the helper (whatever it is doing) and release its pipes."""
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()


class Pool:
    """At most *size* helpers of this process, idle ones kept for the next request."""

    def __init__(self, size: int = HELPERS):
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Helper] = []
        self._lock = threading.Lock()

    def run(self, kind: bytes, html: str, seconds: float) -> str | None:
        """*html* sanitized by a helper (``kind``: one of ``sanitize_helper``'s), or None when
        no helper was free within *seconds*, or it did not answer within *seconds*, or
        failed."""
        if not self._slots.acquire(timeout=seconds):
            logger.warning("No HTML sanitizing helper was free within %s s", seconds)
            return None
        try:
            helper = self._take()
            try:
                answer = helper.ask(kind, html, seconds)
            except (HelperFailed, OSError) as exc:
                helper.close()
                logger.warning("Sanitizing %d characters of HTML failed (%s): shown as text",
                               len(html), exc)
                return None
            with self._lock:
                self._idle.append(helper)
            return answer
        except (HelperFailed, OSError) as exc:
            logger.error("An HTML sanitizing helper could not start (%s)", exc)
            return None
        finally:
            self._slots.release()

    def _take(self) -> _Helper:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Helper()

    def close(self) -> None:
        """Stop the idle helpers (tests; a process's helpers otherwise end with it)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for helper in idle:
            helper.close()


_pool: Pool | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def pool() -> Pool:
    """This process's pool (a new one after a fork: the parent's helpers answer the parent)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool, _pool_pid = Pool(), os.getpid()
        return _pool


def run(kind: bytes, html: str) -> str | None:
    """*html* sanitized by one of this process's helpers within the deadline, or None."""
    return pool().run(kind, html, deadline_seconds())
