"""Many threads' single-row writes in one statement: whoever finds no statement in flight
writes everything queued (group commit).

Every delivery the dispatcher sends ends in one ``delivery_state.advance``: its outcome
recorded and its lane's next delivery claimed, before that next one may go out. With a pool
of lanes running, one statement per delivery made the database round trip, PostgreSQL's
parse, plan and commit (on the same cores), and psycopg's work per statement the largest
cost after the HTTP client. Here a thread that needs to write queues its row; if no write is
in flight (or fewer than ``writers``) it becomes a writer and writes, in one statement, its
own row and any that arrived meanwhile; then it hands the writer's part to the first thread
still waiting, if any, and returns. Nobody waits for company: a lone row goes at once, alone;
rows pile up only while statements are in flight, which is exactly when batching pays.

Each caller returns only once a statement holding its own row has committed (or raises that
statement's error), so a lane still sends its next delivery only after the previous one is
recorded: the guarantees of the single statement (at most one delivery per lane sent and
unrecorded, fencing per row) are the batch's, row by row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


class _Entry:
    __slots__ = ("row", "wake", "done", "result", "error", "promoted")

    def __init__(self, row):
        self.row = row
        self.wake = threading.Event()  # written, or made a writer
        self.done = threading.Event()  # written (or failed)
        self.result: Any = None
        self.error: BaseException | None = None
        self.promoted = False  # made a writer by one that finished


class GroupCommit:
    """``submit(row)`` returns ``write_many([... row ...])``'s answer for ``row``, writing it
    together with the rows other threads submit meanwhile (up to ``limit`` per statement, up
    to ``writers`` statements in flight: on a busy database one statement at a time would
    make every lane wait for it).

    ``write_many`` runs on the writing thread's own database connection and returns one
    answer per row, in order; an exception it raises is raised in every caller whose row it
    held (each then retries or gives up on its own)."""

    def __init__(self, write_many: Callable[[Sequence], Sequence], limit: int = 64,
                 writers: int = 4):
        self.write_many = write_many
        self.limit = limit
        self.writers = writers
        self._lock = threading.Lock()
        self._queue: list[_Entry] = []
        self._writing = 0  # threads writing now
        self.statements = 0  # written so far (for tests)

    def submit(self, row):
        entry = _Entry(row)
        with self._lock:
            self._queue.append(entry)
            leads = self._writing < self.writers
            if leads:
                self._writing += 1
        if not leads:
            entry.wake.wait()
            if not entry.promoted:  # only a row still queued is ever promoted
                return self._answer(entry)
        # A writer: write what is queued until our row is written or in another writer's
        # statement, then pass the part on and wait for our row.
        while not entry.done.is_set():
            with self._lock:
                batch = self._queue[:self.limit]
                del self._queue[:self.limit]
            if not batch:
                break
            self._write(batch)
        self._hand_over()
        entry.done.wait()
        return self._answer(entry)

    def _write(self, batch: list[_Entry]) -> None:
        try:
            results = self.write_many([entry.row for entry in batch])
            self.statements += 1
            for entry, result in zip(batch, results, strict=True):
                entry.result = result
        except BaseException as exc:  # noqa: BLE001 - each caller raises it
            for entry in batch:
                entry.error = exc
        for entry in batch:
            entry.done.set()
            entry.wake.set()

    def _hand_over(self) -> None:
        """Make the first still-queued thread a writer in our place, or note one writer
        fewer."""
        with self._lock:
            if not self._queue:
                self._writing -= 1
                return
            successor = self._queue[0]
            successor.promoted = True
        successor.wake.set()

    @staticmethod
    def _answer(entry: _Entry):
        if entry.error is not None:
            raise entry.error
        return entry.result
