"""Host name lookups: bounded in time, shared while in flight, remembered for a while.

``socket.getaddrinfo`` has no timeout of its own: glibc waits ``timeout:5`` seconds for each
name server and tries each ``attempts:2`` times, so a resolver that says nothing held a
webhook lane, an IMAP connect or an OAuth2 refresh for 10 s or more per name server, while
the caller's own timeout (the webhook's, the mail server's connect) had not even started.
And it has no memory: every webhook request to ``https://hooks.example.com`` and every
reconnect of thousands of accounts to ``imap.example.com`` asked the resolver again.

So a lookup here:

* waits at most the caller's ``timeout`` (``LookupTimedOut`` after it); the lookup itself goes
  on in one of at most ``THREADS`` resolver threads, and its answer is remembered when it
  comes;
* is shared: callers asking for a name already being looked up wait for that one lookup;
* is remembered for ``TTL`` seconds (successes only: a name that did not resolve is asked
  again next time), at most ``MAX_NAMES`` names per process.

What is remembered is the resolver's answer, never a judgement of it: the caller checks the
addresses every time (``netguard``), and connects to one it checked. Each lookup is counted
by its result (``observe``). No Django here.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

TTL = 30.0  # seconds an answer is reused, whatever its DNS TTL (as Java's resolver cache does)
MAX_NAMES = 4096
THREADS = 8
DEFAULT_TIMEOUT = 10.0  # for callers that have no timeout of their own

Answer = list  # getaddrinfo's list of (family, type, proto, canonname, sockaddr)


def observe(result: str) -> None:
    """Told each lookup's result: ``remembered``, ``answered``, ``failed`` or ``timed_out``.
    ``emailapi.lib.metrics`` puts its counter here (``emailapi_name_lookups_total``): this
    module stays free of it, as the IMAP layer's pure modules are."""


class LookupTimedOut(OSError):
    """No answer within the caller's timeout (the lookup goes on; its answer is kept)."""


class _State:
    """Everything that must start afresh in a forked child (rq forks its jobs): the parent's
    resolver threads do not exist there, and a lookup they were running never ends."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answers: OrderedDict[tuple, tuple[float, Answer]] = OrderedDict()
        self.pending: dict[tuple, Future] = {}
        self.queue: deque[tuple[tuple, Future]] = deque()
        self.threads = 0  # resolver threads running


_state = _State()


def _reset_after_fork() -> None:
    global _state
    _state = _State()


os.register_at_fork(after_in_child=_reset_after_fork)


def getaddrinfo(host: str, port: int, timeout: float | None = None) -> Answer:
    """``socket.getaddrinfo(host, port, type=SOCK_STREAM)``, remembered for ``TTL`` seconds,
    waiting at most ``timeout`` seconds (``DEFAULT_TIMEOUT`` if None). Raises what
    ``getaddrinfo`` raises, or ``LookupTimedOut``."""
    key = (host, port)
    state = _state
    with state.lock:
        kept = state.answers.get(key)
        if kept is not None and kept[0] > time.monotonic():
            observe("remembered")
            return kept[1]
        future = state.pending.get(key)
        if future is None:
            future = state.pending[key] = Future()
            state.queue.append((key, future))
            if state.threads < THREADS and not _start_thread(state) and not state.threads:
                # No thread to be had (the process is at its limit) and none running: look it
                # up here, as before, rather than leave it waiting for a thread that never
                # comes. (A running thread takes it from the queue before it ends.)
                state.queue.remove((key, future))
                del state.pending[key]
                future = None
    wait = DEFAULT_TIMEOUT if timeout is None else max(0.0, timeout)
    try:
        answer = (socket.getaddrinfo(host, port, type=socket.SOCK_STREAM) if future is None
                  else future.result(wait))
    except FutureTimeout:
        observe("timed_out")
        raise LookupTimedOut(f"no answer from the name server within {wait:g} s") from None
    except BaseException:
        observe("failed")
        raise
    observe("answered")
    return answer


def _start_thread(state: _State) -> bool:
    """Another resolver thread (``state.lock`` held); False if none could be started."""
    state.threads += 1
    try:
        threading.Thread(target=_resolve_queued, args=(state,), name="resolve",
                         daemon=True).start()
    except RuntimeError:  # "can't start new thread"
        state.threads -= 1
        return False
    return True


def _resolve_queued(state: _State) -> None:
    """A resolver thread: look up what is queued, then end. Daemon threads, so that a process
    can exit while the resolver still says nothing (an executor's threads are joined at
    exit)."""
    while True:
        with state.lock:
            if not state.queue:
                state.threads -= 1
                return
            key, future = state.queue.popleft()
        try:
            answer = socket.getaddrinfo(*key, type=socket.SOCK_STREAM)
        except BaseException as exc:  # noqa: BLE001 - handed to every caller waiting
            with state.lock:
                state.pending.pop(key, None)
            future.set_exception(exc)
            continue
        with state.lock:
            state.pending.pop(key, None)
            state.answers[key] = (time.monotonic() + TTL, answer)
            state.answers.move_to_end(key)
            while len(state.answers) > MAX_NAMES:
                state.answers.popitem(last=False)
        future.set_result(answer)


def forget() -> None:
    """Drop every remembered answer (tests; a lookup in flight still completes)."""
    with _state.lock:
        _state.answers.clear()
