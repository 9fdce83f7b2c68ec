"""What a tracked message's reader does: opening it (``trackOpen``) and following one of its
links (``trackClick``), EmailEngine's events, data ``{messageId, remoteAddress, userAgent}``
(and ``url`` for a click), recorded in the event outbox as every event is.

The link (``mailboxes.tracking``) names the tenant and the account. An account deleted since
(or of a tenant deleted since) records nothing, as EmailEngine drops the events of accounts
that no longer exist; the reader still gets the image or the redirect. Every fetch records
one event: nothing is counted once per reader, as in EmailEngine. But a scanner's fetch
(``mailboxes.automated_fetches``: Google's crawlers, hosts named Barracuda's or SPFBL's) records
nothing, as EmailEngine leaves those out, and is only logged.

A fetch while the database is unavailable is kept in Redis (``mailboxes.tracking_spool``) and
recorded once it is back (the webhook dispatcher drains the spool: ``drain_spool``), with the
time of the fetch as the event's ``created_at`` (its ``date``). Each fetch gets its event's id
when it happens (``Fetch.event_id``), before the first try: a fetch whose commit went through
though its answer was lost, spooled all the same, or one a dying drainer left half done, is
found recorded and not recorded again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import EmailAccount
from emailapi.lib import dbpool
from mailboxes import automated_fetches, tracking_spool
from mailboxes.tracking import CLICK, OPEN
from webhooks import events
from webhooks.models import Event

NAMES = {OPEN: events.TRACK_OPEN, CLICK: events.TRACK_CLICK}
MAX_USER_AGENT = 1024  # what an unauthenticated request may write into an event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetch:
    """One GET of a tracking link: its kind, the link as ``tracking.read`` returned it, who
    fetched it and when, and the id its event will have."""

    kind: str
    link: dict
    remote_address: str
    user_agent: str
    at: datetime = field(default_factory=timezone.now)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self):
        object.__setattr__(self, "user_agent", self.user_agent[:MAX_USER_AGENT])

    @property
    def name(self) -> str:
        return NAMES[self.kind]

    def data(self) -> dict:
        data = {"messageId": self.link["message"]}
        if self.kind == CLICK:
            data["url"] = self.link["url"]
        data.update({"remoteAddress": self.remote_address, "userAgent": self.user_agent})
        return data

    def describe(self) -> str:
        """For the log: which event of which message of whom."""
        return (f"{self.name} of {self.link['message']}, account {self.link['account']} of "
                f"tenant {self.link['tenant']}")

    def as_item(self) -> dict:
        """What the spool keeps (JSON)."""
        return {"id": str(self.event_id), "kind": self.kind, "link": self.link,
                "remoteAddress": self.remote_address, "userAgent": self.user_agent,
                "at": self.at.isoformat()}

    @classmethod
    def from_item(cls, item: dict) -> Fetch:
        """The fetch ``as_item`` kept; KeyError or ValueError for anything else."""
        at, kind, link = parse_datetime(item["at"]), item["kind"], dict(item["link"])
        wanted = (("tenant", int), ("account", str), ("message", str))
        if kind == CLICK:
            wanted += (("url", str),)
        if at is None or kind not in NAMES or not all(isinstance(link.get(key), type_)
                                                      for key, type_ in wanted):
            raise ValueError("not a spooled fetch")
        return cls(kind=kind, link=link,
                   remote_address=str(item["remoteAddress"]), user_agent=str(item["userAgent"]),
                   at=at, event_id=uuid.UUID(item["id"]))


def record(fetch: Fetch) -> bool:
    """One ``trackOpen`` or ``trackClick`` for ``fetch``; False, and nothing recorded, when its
    account is gone or the fetch is a scanner's. The scanner check (a reverse DNS lookup,
    bounded) comes before any query of this function's own, and before anything is spooled.

    The database unavailable (no connection, connection lost, a statement past its limit): the
    fetch is spooled (``mailboxes.tracking_spool``) and True returned; the spool full, or Redis
    down too, it is lost, and the log says so in words. Redis is never asked while the
    database answers."""
    if automated_fetches.skipped(fetch.remote_address):
        logger.info("Detected automated request from %s (%r): %s, not recorded",
                    fetch.remote_address, fetch.user_agent, fetch.describe())
        return False
    try:
        return write(fetch)
    except Exception as exc:
        reason = dbpool.unavailable_reason(exc)
        if reason is None:
            raise
        return _spool(fetch, reason)


def write(fetch: Fetch, once: bool = False) -> bool:
    """Record ``fetch``'s event, with its id and time; False when its account is gone (or, with
    ``once``, when an event of its id is recorded already: a repeat). Raises the database's
    errors."""
    with transaction.atomic():
        if once and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # The dispatcher commits without waiting for the WAL flush; a spooled fetch is
                # removed from Redis once this commits, so its commit must be durable first.
                cursor.execute("SET LOCAL synchronous_commit TO ON")
        link = fetch.link
        if not EmailAccount.objects.filter(tenant_id=link["tenant"],
                                           account_id=link["account"]).exists():
            return False
        if once and Event.objects.filter(pk=fetch.event_id).exists():
            return False
        events.record(link["tenant"], fetch.name, link["account"], fetch.data(),
                      event_id=fetch.event_id, created_at=fetch.at)
    return True


def _spool(fetch: Fetch, reason: str) -> bool:
    """Keep ``fetch`` for ``drain_spool``; False (logged in words) when it cannot be kept."""
    try:
        kept = tracking_spool.keep(fetch.as_item())
    except Exception as exc:  # noqa: BLE001 - whatever Redis raised, the fetch is lost: say so
        logger.error("Tracking event LOST: %s at %s from %s could not be recorded (database "
                     "%s) nor kept in the tracking spool (Redis failed too: %s)",
                     fetch.describe(), fetch.at.isoformat(), fetch.remote_address, reason,
                     type(exc).__name__)
        return False
    if not kept:
        logger.error("Tracking event dropped: %s at %s from %s could not be recorded (database "
                     "%s) and the tracking spool is full (EMAILAPI_TRACKING_SPOOL_MAX, %d)",
                     fetch.describe(), fetch.at.isoformat(), fetch.remote_address, reason,
                     settings.TRACKING_SPOOL_MAX)
        return False
    logger.warning("Tracking event kept in the spool: %s at %s could not be recorded (database "
                   "%s); it is recorded once the database is back", fetch.describe(),
                   fetch.at.isoformat(), reason)
    return True


def write_spooled(item: dict) -> None:
    """Record one spooled fetch, once (``write`` with ``once``). Raises when the database is
    unavailable (the spool keeps the fetch); any other failure (a fetch the database refuses,
    an entry not of ours) is logged and the fetch dropped: it would fail the same way on every
    try, and hold up every fetch behind it."""
    try:
        fetch = Fetch.from_item(item)
    except (KeyError, TypeError, ValueError):
        logger.error("tracking spool: dropped an entry that is not a fetch: %.200s", item)
        return
    try:
        if not write(fetch, once=True):
            logger.info("tracking spool: %s (%s) not recorded: its account is gone or it was "
                        "recorded already", fetch.describe(), fetch.event_id)
    except Exception as exc:
        if dbpool.unavailable_reason(exc) is not None:
            raise
        if isinstance(exc, IntegrityError) and Event.objects.filter(pk=fetch.event_id).exists():
            # Another drainer (after this one's lock lapsed) committed it first.
            logger.info("tracking spool: %s (%s) recorded already by another drainer",
                        fetch.describe(), fetch.event_id)
            return
        logger.exception("tracking spool: %s at %s dropped: the database refused it",
                         fetch.describe(), fetch.at.isoformat())


def drain_spool(stop: threading.Event | None = None) -> int:
    """Record what the spool holds (``tracking_spool.drain``); how many fetches it took off."""
    return tracking_spool.drain(write_spooled, stop)
