"""Which worker holds which account: renewable leases in Redis.

A lease is a key ``emailapi:lease:<account pk>`` whose value is the holder's worker id, with a
TTL. The holder renews it every claim tick; a worker that dies (even ``kill -9``) stops
renewing, the key expires, and another worker claims the account within TTL + one tick.
Renew and release are compare-and-set scripts, so a worker can never extend or drop a lease
it no longer holds. Renewing also takes back a lease that expired while nobody else took it (a
worker that could not reach Redis for a while keeps its sessions, and its leases once Redis
answers again, unless another worker claimed them meanwhile). Workers also keep a heartbeat
key so each can compute its fair share.

A worker that dies is also noticed long before its leases run out: each stays subscribed to a
presence channel of its own, and Redis drops the subscription the moment the process dies (its
socket closes, even on ``kill -9``). A worker whose heartbeat key lives while nobody has been
subscribed to its channel for a while is *gone* (``gone_workers``); the others delete its
leases and heartbeat (``forget``) and claim its accounts at once, instead of waiting up to a
TTL for them to expire. Judged wrongly (a live worker cut off from Redis for that long), the
cost is churn, never a double hold: the database fences every write by the holder row
(``mailboxes.worker.holders``), a live worker takes back at its next renewal any lease nobody
claimed, and gives up those claimed by others.

The heartbeat keys are also listed in a set (``WORKERS_KEY``), so that the live workers are read
without scanning the database.

Redis holds no data here that cannot be lost: if it restarts, leases are simply claimed again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import redis

LEASE_PREFIX = "emailapi:lease:"
WORKER_PREFIX = "emailapi:worker:"
# The ids of the workers with a heartbeat key, so that the live ones are read without a SCAN
# of the whole database (``workers``): 20,000 leases and as many poll records made that 40-odd
# round trips every claim tick of every worker, each waiting for the interpreter lock behind
# the pool's threads (the slice of a tick that held the loop longest, 250-500 ms, during a
# first index of 20,000 over four workers).
WORKERS_KEY = "emailapi:workers"
# A worker of an earlier version keeps no entry there: the keys are scanned for such workers
# this often (seconds), and those found are entered for them.
WORKER_SCAN_EVERY = 60.0
PRESENCE_PREFIX = "emailapi:presence:"
# The heartbeat key's value of a worker that keeps a presence subscription. A worker of an
# earlier version (value "1") keeps none, and is never judged gone: its leases run out.
PRESENT = b"presence"
# Leases renewed by one script (``Leases.renew``).
RENEW_CHUNK = 500

_RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  elseif holder == false then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
  else
    table.insert(lost, key)
  end
end
return lost
"""

# Delete a gone worker's heartbeat (ARGV[1]: its key) and those of KEYS it still holds.
_FORGET = """
redis.call('DEL', ARGV[1])
local freed = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[2] then
    redis.call('DEL', key)
    freed = freed + 1
  end
end
return freed
"""

# KEYS[1]: the index of workers; KEYS[2..]: heartbeat keys, ARGV: their workers' ids. Each
# whose key is gone leaves the index; at once, so a heartbeat written meanwhile keeps it.
_PRUNE = """
for i, id in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    redis.call('SREM', KEYS[1], id)
  end
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leases:
    def __init__(self, client: redis.Redis, worker_id: str, ttl_seconds: float):
        self.redis = client
        self.worker_id = worker_id
        self.ttl_ms = int(ttl_seconds * 1000)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._forget = client.register_script(_FORGET)
        self._prune = client.register_script(_PRUNE)
        self._next_scan = 0.0  # for workers of an earlier version (``workers``)
        # Channels are not per database, heartbeats are: the database number keeps the
        # presence of workers on another database (another deployment's) out of ours.
        self.db = client.connection_pool.connection_kwargs.get("db", 0)
        self._presence: redis.client.PubSub | None = None
        self._absent_since: dict[str, float] = {}

    @staticmethod
    def key(account_pk: int) -> str:
        return f"{LEASE_PREFIX}{account_pk}"

    def acquire(self, account_pk: int) -> bool:
        return bool(self.redis.set(self.key(account_pk), self.worker_id, nx=True, px=self.ttl_ms))

    def acquire_many(self, account_pks: list[int], want: int,
                     chunk: int = 1000) -> Iterator[int]:
        """Lease up to ``want`` of ``account_pks``, tried in their order: ``SET NX`` in
        pipelines, each of as many as are still wanted (so none is leased beyond ``want``),
        yielding each account leased once its pipeline has answered. One ``acquire`` each
        was a round trip per account on the worker's main loop: a survivor taking a dead
        worker's 1,667 accounts spent a 0.7 s claim tick on them in the failover bench, and
        started no connect meanwhile."""
        start = 0
        while want > 0 and start < len(account_pks):
            part = account_pks[start:start + min(chunk, want)]
            start += len(part)
            pipe = self.redis.pipeline(transaction=False)
            for pk in part:
                pipe.set(self.key(pk), self.worker_id, nx=True, px=self.ttl_ms)
            for pk, leased in zip(part, pipe.execute(), strict=True):
                if leased:
                    want -= 1
                    yield pk

    def unheld(self, account_pks: list[int], chunk: int = 1000) -> list[int]:
        """The accounts of ``account_pks`` (in their order) that no worker holds a lease on
        now: one MGET per ``chunk``, where trying ``acquire`` on each would cost a round trip
        per account another worker holds (thousands a claim tick for a worker short of its
        share among several at 10,000 accounts)."""
        free = []
        for start in range(0, len(account_pks), chunk):
            part = account_pks[start:start + chunk]
            holders = self.redis.mget([self.key(pk) for pk in part])
            free += [pk for pk, holder in zip(part, holders, strict=True) if holder is None]
        return free

    def renew(self, account_pks: list[int], chunk: int = RENEW_CHUNK) -> set[int]:
        """Extend our leases (taking back any that expired unclaimed); return the accounts
        another worker holds now.

        One script per ``chunk`` leases: Redis runs a script to its end with every other
        client waiting, and one over a worker's 6,667 leases (20,000 accounts, three workers)
        took 50-73 ms on the bench machine, every claim tick of every worker, while the API's
        and the event stream's commands waited."""
        lost: list[bytes] = []
        for start in range(0, len(account_pks), chunk):
            lost += self._renew(keys=[self.key(pk) for pk in account_pks[start:start + chunk]],
                                args=[self.worker_id, self.ttl_ms])
        return {int(key.decode().rsplit(":", 1)[1]) for key in lost}

    def release(self, account_pk: int) -> None:
        self._release(keys=[self.key(account_pk)], args=[self.worker_id])

    def holder(self, account_pk: int) -> str | None:
        value = self.redis.get(self.key(account_pk))
        return value.decode() if value else None

    def presence_channel(self, worker_id: str) -> str:
        return f"{PRESENCE_PREFIX}{self.db}:{worker_id}"

    def heartbeat(self) -> None:
        """This worker is alive: its heartbeat key for a TTL, and its presence subscription
        (opened again if Redis dropped it). A worker that cannot keep the subscription says
        so in its heartbeat, and is then never judged gone (its leases run out instead)."""
        present = self._keep_present()
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(f"{WORKER_PREFIX}{self.worker_id}", PRESENT if present else b"1",
                 px=self.ttl_ms)
        pipe.sadd(WORKERS_KEY, self.worker_id)
        pipe.execute()

    def _keep_present(self) -> bool:
        try:
            if self._presence is None:
                self._presence = self.redis.pubsub()
                self._presence.subscribe(self.presence_channel(self.worker_id))
            # Reads the subscription's confirmation (nothing is ever published on it), and
            # fails on a connection Redis closed, so the next heartbeat subscribes again.
            while self._presence.get_message(timeout=0.0):
                pass
            return True
        except Exception:  # noqa: BLE001 - Redis down (the heartbeat fails too) or no SUBSCRIBE
            self._leave()
            return False

    def _leave(self) -> None:
        if self._presence is not None:
            try:
                self._presence.close()
            except Exception:  # noqa: BLE001 - a connection already gone
                pass
            self._presence = None

    def retire(self) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(f"{WORKER_PREFIX}{self.worker_id}")
            pipe.srem(WORKERS_KEY, self.worker_id)
            pipe.execute()
        finally:
            self._leave()

    def workers(self) -> dict[str, bytes]:
        """The live workers (heartbeat keys) by id, with their heartbeat values: those of the
        index (``WORKERS_KEY``), and every ``WORKER_SCAN_EVERY`` those whose keys a scan
        finds (a worker of an earlier version enters none itself). Workers whose key ran out
        leave the index."""
        ids = {member.decode() for member in self.redis.smembers(WORKERS_KEY)}
        now = time.monotonic()
        if now >= self._next_scan:
            self._next_scan = now + WORKER_SCAN_EVERY
            found = {key.decode()[len(WORKER_PREFIX):]
                     for key in self.redis.scan_iter(match=f"{WORKER_PREFIX}*", count=1000)}
            if found - ids:
                self.redis.sadd(WORKERS_KEY, *(found - ids))
            ids |= found
        if not ids:
            return {}
        order = sorted(ids)
        keys = [f"{WORKER_PREFIX}{worker_id}" for worker_id in order]
        values = self.redis.mget(keys)
        gone = [i for i, value in enumerate(values) if value is None]
        if gone:
            self._prune(keys=[WORKERS_KEY, *(keys[i] for i in gone)],
                        args=[order[i] for i in gone])
        return {worker_id: value for worker_id, value in zip(order, values, strict=True)
                if value is not None}

    def gone_workers(self, workers: dict[str, bytes], after: float) -> list[str]:
        """Of ``workers`` (``workers()``), those with a presence subscription whom nobody
        has been subscribed for at least ``after`` seconds of this worker's looks. Only
        while this worker's own subscription is seen: right after Redis restarted, workers
        subscribe again one by one, and absence is not death then."""
        others = [w for w, value in workers.items() if w != self.worker_id and value == PRESENT]
        channels = [self.presence_channel(w) for w in [self.worker_id, *others]]
        counts = dict(self.redis.pubsub_numsub(*channels))
        now = time.monotonic()
        if not counts.get(channels[0].encode()):
            self._absent_since.clear()
            return []
        absent = [w for w, channel in zip(others, channels[1:], strict=True)
                  if not counts.get(channel.encode())]
        self._absent_since = {w: self._absent_since.get(w, now) for w in absent}
        return [w for w, since in self._absent_since.items() if now - since >= after]

    def forget(self, worker_id: str, account_pks: list[int], chunk: int = 1000) -> int:
        """``worker_id`` is gone: delete its heartbeat and those of ``account_pks``' leases it
        still holds (each checked in Redis, so a lease claimed meanwhile stays). Returns how
        many leases were freed."""
        self._absent_since.pop(worker_id, None)
        freed = 0
        for start in range(0, max(1, len(account_pks)), chunk):
            part = account_pks[start:start + chunk]
            freed += int(self._forget(keys=[self.key(pk) for pk in part],
                                      args=[f"{WORKER_PREFIX}{worker_id}", worker_id]))
        return freed
