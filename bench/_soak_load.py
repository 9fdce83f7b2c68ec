"""The load of the soak (``bench/soak.py``): API clients with a steady mix of reads, writes
and sends, new mail APPENDed every second, and a poller of the accounts' states. Every API
request is recorded with its start, end, status and error code.

Not a benchmark itself (``bench/run.py`` skips files starting with an underscore).
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.servers import seed

# kind -> weight: what the clients do, in proportion.
MIX = {
    "list": 22, "message": 14, "source": 12, "attachment": 10, "search": 7,
    "search-index": 5, "flags": 10, "accounts": 6, "mailboxes": 5, "account": 4, "send": 3,
    "outbox": 2,
}
MAIL_DOMAIN = "soak.example.test"


@dataclass(frozen=True)
class Request:
    started: float  # time.time()
    ended: float
    kind: str
    status: int | str  # HTTP status, or "conn" / "timeout" / "truncated"
    code: str  # the error body's "code", or the exception's name


@dataclass
class Stats:
    requests: list[Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)


class Api:
    """One keep-alive HTTP/1.1 connection to the web server that records every request and
    never raises: a refused or cut connection is status ``conn``, a hang ``timeout``, a
    response shorter than its Content-Length ``truncated``."""

    def __init__(self, port: int, token: str, stats: Stats, timeout: float = 30.0):
        self.port, self.stats, self.timeout = port, stats, timeout
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def call(self, kind: str, method: str, path: str, body: Any = None) -> tuple[Any, Any]:
        """(status, parsed JSON or raw bytes); status as in ``Request``."""
        started = time.time()
        status: int | str
        data: Any = None
        code = ""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            self.conn.request(method, path, headers=self.headers,
                              body=json.dumps(body) if body is not None else None)
            response = self.conn.getresponse()
            raw = response.read()
            status = response.status
            data = raw
            if response.getheader("Content-Type", "").startswith("application/json"):
                try:
                    data = json.loads(raw)
                except ValueError:
                    code = "unparsable JSON"
            if status >= 400:
                code = data.get("code", "") if isinstance(data, dict) else code or "not JSON"
            if response.will_close:
                self.close()
        except http.client.IncompleteRead as exc:
            status, code = "truncated", type(exc).__name__
            self.close()
        except (TimeoutError, socket.timeout) as exc:
            status, code = "timeout", type(exc).__name__
            self.close()
        except (OSError, http.client.HTTPException) as exc:
            status, code = "conn", type(exc).__name__
            self.close()
        self.stats.add(Request(started, time.time(), kind, status, code))
        return status, data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Catalog:
    """What the clients have learned of each account: message ids, attachment ids."""

    def __init__(self, accounts: list[str]):
        self.accounts = accounts
        self.messages: dict[str, list[str]] = {a: [] for a in accounts}
        self.attachments: dict[str, list[str]] = {a: [] for a in accounts}
        self.pages: dict[str, int] = {a: 1 for a in accounts}
        self._lock = threading.Lock()

    def learn_listing(self, account: str, body: dict) -> None:
        ids = [m["id"] for m in body.get("messages", []) if "id" in m]
        with self._lock:
            known = self.messages[account]
            known.extend(i for i in ids if i not in known)
            del known[:-200]
            self.pages[account] = max(1, int(body.get("pages") or 1))

    def learn_message(self, account: str, body: dict) -> None:
        ids = [a["id"] for a in body.get("attachments") or [] if a.get("id")]
        with self._lock:
            known = self.attachments[account]
            known.extend(i for i in ids if i not in known)
            del known[:-50]

    def pick(self, rng: random.Random, account: str, what: str) -> str | None:
        with self._lock:
            known = self.messages[account] if what == "message" else self.attachments[account]
            return rng.choice(known) if known else None


class Client(threading.Thread):
    """An API client doing the ``MIX`` against random accounts until told to stop."""

    def __init__(self, number: int, port: int, token: str, stats: Stats, catalog: Catalog,
                 accounts: dict[str, str], halt: threading.Event, think: float, sends: list):
        super().__init__(daemon=True, name=f"soak-client-{number}")
        self.api = Api(port, token, stats)
        self.rng = random.Random(number)
        self.catalog, self.accounts, self.halt = catalog, accounts, halt
        self.think, self.sends, self.number = think, sends, number
        self.kinds, self.weights = list(MIX), list(MIX.values())

    def run(self) -> None:
        count = 0
        while not self.halt.is_set():
            account = self.rng.choice(self.catalog.accounts)
            kind = self.rng.choices(self.kinds, self.weights)[0]
            self.one(kind, account, count)
            count += 1
            if self.think:
                time.sleep(self.rng.uniform(0, 2 * self.think))
        self.api.close()

    def one(self, kind: str, account: str, count: int) -> None:
        base = f"/v1/account/{account}"
        if kind in ("message", "source", "flags", "attachment"):
            what = "attachment" if kind == "attachment" else "message"
            item = self.catalog.pick(self.rng, account, what)
            if item is None:
                kind = "list" if what == "message" else "message"
                item = self.catalog.pick(self.rng, account, "message")
                if item is None:
                    kind = "list"
        if kind == "list":
            page = self.rng.randrange(self.catalog.pages[account])
            status, body = self.api.call(kind, "GET",
                                         f"{base}/messages?path=INBOX&pageSize=20&page={page}")
            if status == 200:
                self.catalog.learn_listing(account, body)
        elif kind == "message":
            status, body = self.api.call(kind, "GET", f"{base}/message/{item}")
            if status == 200:
                self.catalog.learn_message(account, body)
        elif kind == "source":
            self.api.call(kind, "GET", f"{base}/message/{item}/source")
        elif kind == "attachment":
            self.api.call(kind, "GET", f"{base}/attachment/{item}")
        elif kind == "search":
            self.api.call(kind, "POST", f"{base}/search?path=INBOX",
                          {"search": {"subject": "Soak"}})
        elif kind == "search-index":
            self.api.call(kind, "POST", f"{base}/search?path=INBOX&source=index",
                          {"search": {"subject": "Soak"}})
        elif kind == "flags":
            change = "add" if self.rng.random() < 0.5 else "delete"
            self.api.call(kind, "PUT", f"{base}/message/{item}",
                          {"flags": {change: ["\\Flagged"]}})
        elif kind == "accounts":
            self.api.call(kind, "GET", "/v1/accounts?pageSize=20")
        elif kind == "mailboxes":
            self.api.call(kind, "GET", f"{base}/mailboxes")
        elif kind == "account":
            self.api.call(kind, "GET", base)
        elif kind == "outbox":
            self.api.call(kind, "GET", "/v1/outbox?pageSize=20")
        elif kind == "send":
            self.send(account, count)

    def send(self, account: str, count: int) -> None:
        message_id = f"<soak-send-{self.number}-{count}-{time.time_ns()}@{MAIL_DOMAIN}>"
        raw = seed.make_message(subject=f"Soak send {self.number}-{count}",
                                from_=self.accounts[account], to="Bob <bob@example.test>",
                                message_id=message_id, body="Sent by the soak.\n")
        status, _ = self.api.call("send", "POST", f"/v1/account/{account}/submit",
                                  {"raw": base64.b64encode(raw).decode()})
        if status in (200, 202):  # 200 since issue 16 (EmailEngine's status)
            self.sends.append(message_id)


@dataclass
class Appended:
    message_id: str
    account: str
    at: float  # time.time() of the APPEND's OK


class Appender(threading.Thread):
    """New mail every ``interval`` seconds, round robin over the mailboxes, each with a
    Message-ID of its own: what every ``messageNew`` webhook is counted against."""

    def __init__(self, users: dict, interval: float, halt: threading.Event, run_id: str):
        super().__init__(daemon=True, name="soak-appender")
        self.users, self.interval, self.halt, self.run_id = users, interval, halt, run_id
        self.appended: list[Appended] = []
        self.failures: list[str] = []

    def run(self) -> None:
        accounts = list(self.users)
        started = time.monotonic()
        number = 0
        while not self.halt.is_set():
            account = accounts[number % len(accounts)]
            message_id = f"<soak-{self.run_id}-{number}@{MAIL_DOMAIN}>"
            raw = seed.make_message(subject=f"Soak delivery {number}", message_id=message_id,
                                    body=f"Delivery {number} of the soak.\n")
            try:
                client = self.users[account].imap_client()
                try:
                    client.append("INBOX", raw)
                finally:
                    client.logout()
                self.appended.append(Appended(message_id, account, time.time()))
            except Exception as exc:  # noqa: BLE001 - the soak's side failed; reported
                self.failures.append(f"{account}: {exc!r}")
            number += 1
            self.halt.wait(max(0.0, started + number * self.interval - time.monotonic()))


@dataclass
class Snapshot:
    at: float
    states: dict[str, tuple[str, float]]  # account -> (state, stateChanged as a timestamp)


class StatePoller(threading.Thread):
    """``GET /v1/accounts`` every second: the accounts' states as a client sees them. Its
    requests count with everyone's (kind ``poll``); a web process that hangs stalls it, so
    the reconnect figures come from ``DbStatePoller``."""

    def __init__(self, port: int, token: str, stats: Stats, halt: threading.Event,
                 interval: float = 1.0):
        super().__init__(daemon=True, name="soak-state-poller")
        self.api = Api(port, token, stats)
        self.halt, self.interval = halt, interval
        self.snapshots: list[Snapshot] = []

    def run(self) -> None:
        while not self.halt.is_set():
            self.poll()
            self.halt.wait(self.interval)
        self.api.close()

    def poll(self) -> Snapshot | None:
        status, body = self.api.call("poll", "GET", "/v1/accounts?pageSize=1000")
        if status != 200:
            return None
        states = {}
        for row in body.get("accounts", []):
            changed = row.get("stateChanged")
            try:
                stamp = datetime.fromisoformat(changed.replace("Z", "+00:00")).timestamp()
            except (AttributeError, ValueError):
                stamp = 0.0
            states[row["account"]] = (row.get("state"), stamp)
        snapshot = Snapshot(time.time(), states)
        self.snapshots.append(snapshot)
        return snapshot


class DbStatePoller(threading.Thread):
    """The same states once a second straight from the table the API reads them from,
    through the soak's own session (storms spare it): reconnect times stay measurable while
    the web process itself is failing."""

    def __init__(self, query, halt: threading.Event, interval: float = 1.0):
        super().__init__(daemon=True, name="soak-db-state-poller")
        self.query, self.halt, self.interval = query, halt, interval
        self.snapshots: list[Snapshot] = []
        self.failures = 0

    def run(self) -> None:
        while not self.halt.is_set():
            self.poll()
            self.halt.wait(self.interval)

    def poll(self) -> Snapshot | None:
        try:
            rows = self.query("SELECT account_id, state, extract(epoch FROM state_changed_at) "
                              "FROM accounts_emailaccount")
        except Exception:  # noqa: BLE001 - counted; the next poll tries again
            self.failures += 1
            return None
        snapshot = Snapshot(time.time(), {a: (state, float(changed or 0))
                                          for a, state, changed in rows})
        self.snapshots.append(snapshot)
        return snapshot
