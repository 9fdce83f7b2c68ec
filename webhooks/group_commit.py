"""Many threads' single-row writes in one statement: whoever finds no statement in flight
writes everything queued (group commit).

Every delivery the dispatcher sends ends in one ``delivery_state.advance``: its outcome
recorded and its lane's next delivery claimed, before that next one may go out. With a pool
of lanes running, one statement per delivery made the database round trip, PostgreSQL's
parse, plan and commit (on the same cores), and psycopg's work per statement the largest
cost after the HTTP client. Here a thread that needs to write queues its row; if no write is
in flight it becomes the writer and writes, in one statement, its own row and any that
arrived meanwhile; then it hands the writer's part to the first thread still waiting, if
any, and returns. Nobody waits for company: a lone row goes at once, alone; rows pile up only
while a statement is in flight, which is exactly when batching pays.

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
    __slots__ = ("row", "ready", "result", "error", "write")

    def __init__(self, row):
        self.row = row
        self.ready = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.write = False  # woken to be the writer, not with a result


class GroupCommit:
    """``submit(row)`` returns ``write_many([... row ...])``'s answer for ``row``, writing it
    together with the rows other threads submit meanwhile (up to ``limit`` per statement).

    ``write_many`` runs on the writing thread's own database connection and returns one
    answer per row, in order; an exception it raises is raised in every caller whose row it
    held (each then retries or gives up on its own)."""

    def __init__(self, write_many: Callable[[Sequence], Sequence], limit: int = 64):
        self.write_many = write_many
        self.limit = limit
        self._lock = threading.Lock()
        self._queue: list[_Entry] = []
        self._writing = False
        self.statements = 0  # written so far (for tests and metrics)

    def submit(self, row):
        entry = _Entry(row)
        with self._lock:
            self._queue.append(entry)
            if self._writing:
                leads = False
            else:
                self._writing = leads = True
        if not leads:
            entry.ready.wait()
            if not entry.write:
                return self._answer(entry)
        # The writer: our row is queued; write batches until it is done.
        while not entry.ready.is_set() or entry.write:
            entry.write = False
            with self._lock:
                batch, self._queue = self._queue[:self.limit], self._queue[self.limit:]
            self._write(batch)
        self._hand_over()
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
            entry.ready.set()

    def _hand_over(self) -> None:
        """Make the first still-waiting thread the writer, or note that none writes."""
        with self._lock:
            if not self._queue:
                self._writing = False
                return
            successor = self._queue[0]
            successor.write = True
        successor.ready.set()

    @staticmethod
    def _answer(entry: _Entry):
        if entry.error is not None:
            raise entry.error
        return entry.result
