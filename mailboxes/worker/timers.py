"""When each held account's next step is due: a heap, not a look at every account.

A worker holding 10,000 accounts looked at every one of them every 50 ms to find the few whose
timer was due (and at every one again to know how long it may sleep): at 10,000 that look was
most of the loop thread's time during a restart, and it held the GIL the pool threads needed
to sync the accounts that had just logged in. A heap of ``(due at, sequence, account)`` finds
what is due in O(log n) per timer.

Entries are never removed from the middle of the heap: setting an account's timer again (or
cancelling it, when a step starts) only changes which sequence number is current for the
account, and an entry whose number is not current is stale and skipped when it reaches the top.
So an account's timer fires at most once per ``set`` (never twice, whatever was set before) and
only at the time last set. Stale entries are bounded: the heap is rebuilt from the current ones
when they outnumber them.
"""

from __future__ import annotations

import heapq
import itertools

# Rebuild once the heap holds this many entries more than twice the live ones.
COMPACT_SLACK = 1024


class Timers:
    __slots__ = ("_heap", "_current", "_sequence")

    def __init__(self):
        self._heap: list[tuple[float, int, int]] = []
        self._current: dict[int, int] = {}  # account pk -> sequence of its live entry
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, pk: int) -> bool:
        return pk in self._current

    def set(self, pk: int, at: float) -> None:
        """The account's timer fires at ``at`` (monotonic), replacing any it had."""
        sequence = next(self._sequence)
        self._current[pk] = sequence
        heapq.heappush(self._heap, (at, sequence, pk))
        if len(self._heap) > 2 * len(self._current) + COMPACT_SLACK:
            self._compact()

    def cancel(self, pk: int) -> None:
        """The account has no timer (its step started, or it is gone)."""
        self._current.pop(pk, None)

    def pop_due(self, now: float) -> list[int]:
        """The accounts whose timer is due at ``now``, earliest first; their timers are
        spent (each fires once)."""
        heap, current = self._heap, self._current
        due = []
        while heap and heap[0][0] <= now:
            _, sequence, pk = heapq.heappop(heap)
            if current.get(pk) == sequence:
                del current[pk]
                due.append(pk)
        return due

    def next_at(self) -> float | None:
        """When the earliest live timer fires, or None."""
        heap, current = self._heap, self._current
        while heap and current.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)  # stale
        return heap[0][0] if heap else None

    def _compact(self) -> None:
        current = self._current
        self._heap = [entry for entry in self._heap if current.get(entry[2]) == entry[1]]
        heapq.heapify(self._heap)
