"""Which worker holds which account: renewable leases in Redis.

A lease is a key ``emailapi:lease:<account pk>`` whose value is the holder's worker id, with a
TTL. The holder renews it every claim tick; a worker that dies (even ``kill -9``) stops
renewing, the key expires, and another worker claims the account within TTL + one tick.
Renew and release are compare-and-set scripts, so a worker can never extend or drop a lease
it no longer holds. Renewing also takes back a lease that expired while nobody else took it (a
worker that could not reach Redis for a while keeps its sessions, and its leases once Redis
answers again, unless another worker claimed them meanwhile). Workers also keep a heartbeat
key so each can compute its fair share.

Redis holds no data here that cannot be lost: if it restarts, leases are simply claimed again.
"""

from __future__ import annotations

import redis

LEASE_PREFIX = "emailapi:lease:"
WORKER_PREFIX = "emailapi:worker:"

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

    @staticmethod
    def key(account_pk: int) -> str:
        return f"{LEASE_PREFIX}{account_pk}"

    def acquire(self, account_pk: int) -> bool:
        return bool(self.redis.set(self.key(account_pk), self.worker_id, nx=True, px=self.ttl_ms))

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

    def renew(self, account_pks: list[int]) -> set[int]:
        """Extend our leases (taking back any that expired unclaimed); return the accounts
        another worker holds now."""
        if not account_pks:
            return set()
        lost = self._renew(keys=[self.key(pk) for pk in account_pks],
                           args=[self.worker_id, self.ttl_ms])
        return {int(key.decode().rsplit(":", 1)[1]) for key in lost}

    def release(self, account_pk: int) -> None:
        self._release(keys=[self.key(account_pk)], args=[self.worker_id])

    def holder(self, account_pk: int) -> str | None:
        value = self.redis.get(self.key(account_pk))
        return value.decode() if value else None

    def heartbeat(self) -> None:
        self.redis.set(f"{WORKER_PREFIX}{self.worker_id}", "1", px=self.ttl_ms)

    def retire(self) -> None:
        self.redis.delete(f"{WORKER_PREFIX}{self.worker_id}")

    def live_workers(self) -> int:
        return sum(1 for _ in self.redis.scan_iter(match=f"{WORKER_PREFIX}*", count=1000))
