"""An account's IMAP/SMTP protocol log (EmailEngine's ``logs``): the last lines each of its
connections sent and read, for support, at ``GET /v1/logs/{account}`` and on the dashboard.

Off by default; ``logs: true`` on the account turns it on (its connections open from then on
carry a tap: ``connection_settings`` passes ``opener(account, ...)`` as the protocol layer's
``protocol_log``). Each line is redacted before it leaves the process:

- IMAP: ``LOGIN`` keeps only its tag and command (``a1 LOGIN ***``), ``AUTHENTICATE`` its
  mechanism; every line the client sends until the server's tagged answer to it, and the
  server's ``+`` challenges meanwhile, are ``***`` (SASL PLAIN, XOAUTH2 and OAUTHBEARER
  payloads, a password sent as a literal);
- SMTP: ``AUTH <mechanism>`` keeps only the mechanism; the client's answers to ``334``
  challenges, and the challenges, are ``***``;
- any line still holding the account's password or access token (in clear) has it replaced
  by ``***``;
- message contents are not kept: an IMAP literal is logged by its size (``[1234 bytes]``),
  the body sent after SMTP ``DATA`` as ``[message, 1234 bytes]``; lines are cut at
  ``MAX_LINE`` characters.

Lines are kept in a Redis list per account (``<prefix>:logs:<account pk>``), capped at
``EMAILAPI_ACCOUNT_LOG_LINES`` and expiring ``EMAILAPI_ACCOUNT_LOG_TTL`` seconds after the last
write. A connection buffers its lines and writes them in one round trip when a command ends
(a tagged IMAP answer, a continuation, BYE; every SMTP reply) or 100 lines have gathered.
Redis being away loses lines, never a connection: a failing write is dropped.

Each entry is one JSON object: ``{"time", "proto": "imap"|"smtp", "cid", "src": "c"|"s",
"msg"}`` (``cid`` tells concurrent connections apart, ``src`` says who spoke: client or
server).
"""

from __future__ import annotations

import json
import logging
import re
import secrets as random
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings

from emailapi.lib.redis import get_redis
from emailapi.lib.timestamps import utc_iso

logger = logging.getLogger(__name__)

MAX_LINE = 2000
FLUSH_AT = 100
HIDDEN = "***"
_LITERAL = re.compile(r"\{(\d+)\+?\}$")


def key(account_pk: int) -> str:
    return f"{settings.EMAILAPI_REDIS_PREFIX}:logs:{account_pk}"


def read(account_pk: int) -> list[dict]:
    """The account's kept lines, oldest first."""
    entries = []
    for raw in get_redis().lrange(key(account_pk), 0, -1):
        try:
            entries.append(json.loads(raw))
        except ValueError:
            continue
    return entries


def clear(account_pk: int) -> None:
    get_redis().delete(key(account_pk))


def opener(account_pk: int, proto: str, known_secrets: tuple[str | None, ...]) \
        -> Callable[[], Callable[[str, bytes], None]]:
    """What the protocol layer's ``protocol_log`` takes: a new tap per connection."""
    hidden = tuple(s for s in known_secrets if s and len(s) >= 3)
    redactor = ImapRedactor if proto == "imap" else SmtpRedactor
    return lambda: Tap(key(account_pk), proto, redactor(hidden))


class Tap:
    """One connection's log: redacts what passes, buffers, writes to Redis."""

    def __init__(self, list_key: str, proto: str, redactor):
        self.key, self.proto, self.redactor = list_key, proto, redactor
        self.cid = random.token_hex(4)
        self.buffer: list[str] = []

    def __call__(self, direction: str, data: bytes) -> None:
        try:
            if direction == "C":
                lines, ends = self.redactor.client(data), False
            else:
                lines, ends = self.redactor.server(data)
            now = utc_iso(datetime.now(UTC))
            src = "c" if direction == "C" else "s"
            for line in lines:
                if len(line) > MAX_LINE:
                    line = line[:MAX_LINE] + "..."
                self.buffer.append(json.dumps({"time": now, "proto": self.proto, "cid": self.cid,
                                               "src": src, "msg": line}))
            if self.buffer and (ends or len(self.buffer) >= FLUSH_AT):
                self.flush()
        except Exception:  # noqa: BLE001 - the log must never break the connection
            self.buffer.clear()
            logger.debug("protocol log write failed", exc_info=True)

    def flush(self) -> None:
        lines, self.buffer = self.buffer, []
        pipe = get_redis().pipeline(transaction=False)
        pipe.rpush(self.key, *lines)
        pipe.ltrim(self.key, -settings.EMAILAPI_ACCOUNT_LOG_LINES, -1)
        pipe.expire(self.key, settings.EMAILAPI_ACCOUNT_LOG_TTL)
        pipe.execute()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class _Redactor:
    def __init__(self, hidden: tuple[str, ...] = ()):
        self.hidden = hidden

    def scrub(self, line: str) -> str:
        for secret in self.hidden:
            if secret in line:
                line = line.replace(secret, HIDDEN)
        return line


class ImapRedactor(_Redactor):
    def __init__(self, hidden: tuple[str, ...] = ()):
        super().__init__(hidden)
        self.auth_tag: str | None = None  # a LOGIN/AUTHENTICATE waits for its tagged answer
        self.literal = False  # the client's next send is a literal announced by {n}

    def client(self, data: bytes) -> list[str]:
        if self.auth_tag is not None:
            return [HIDDEN] if data.strip() else []
        if self.literal:
            self.literal = False
            return [f"[{len(data)} bytes]"]
        out = []
        for line in _text(data).split("\r\n"):
            if not line:
                continue
            words = line.split(" ", 3)
            command = words[1].upper() if len(words) > 1 else ""
            if command in ("LOGIN", "AUTHENTICATE"):
                self.auth_tag = words[0]
                mechanism = f" {words[2]}" if command == "AUTHENTICATE" and len(words) > 2 else ""
                out.append(f"{words[0]} {command}{mechanism} {HIDDEN}")
                continue
            self.literal = bool(_LITERAL.search(line))
            out.append(self.scrub(line))
        return out

    def server(self, data: bytes) -> tuple[list[str], bool]:
        line = _text(data).rstrip("\r\n")
        untagged = line.startswith("* ")
        if self.auth_tag is not None:
            if line.startswith("+"):
                return ["+ " + HIDDEN], True
            if line.startswith(self.auth_tag + " "):
                self.auth_tag = None
        ends = not untagged or line[2:].upper().startswith("BYE")
        return [self.scrub(line)], ends


class SmtpRedactor(_Redactor):
    def __init__(self, hidden: tuple[str, ...] = ()):
        super().__init__(hidden)
        self.auth = False  # an AUTH exchange is going on
        self.body_next = False  # the server said 354: the next send is the message

    def client(self, data: bytes) -> list[str]:
        if self.body_next:
            self.body_next = False
            return [f"[message, {len(data)} bytes]"]
        out = []
        for line in _text(data).split("\r\n"):
            if not line:
                continue
            if self.auth:
                out.append(HIDDEN)
                continue
            words = line.split(" ", 2)
            if words[0].upper() == "AUTH":
                self.auth = True
                mechanism = f" {words[1]}" if len(words) > 1 else ""
                out.append(f"AUTH{mechanism} {HIDDEN}" if len(words) > 2 else f"AUTH{mechanism}")
                continue
            out.append(self.scrub(line))
        return out

    def server(self, data: bytes) -> tuple[list[str], bool]:
        line = _text(data).rstrip("\r\n")
        code = line[:3]
        last = line[3:4] != "-"
        if self.auth:
            if code == "334":
                return [f"334 {HIDDEN}"], True
            if last:
                self.auth = False
        if code == "354":
            self.body_next = True
        return [self.scrub(line)], last
