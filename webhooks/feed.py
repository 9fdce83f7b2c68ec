"""Reading published events in ``seq`` order: the change feed, and the replay of the live stream.

Only published events (``seq`` set by ``webhooks.sequencer.publish_pending``) are ever read:
an unpublished one may still be withdrawn. Every read is bounded by a *horizon*:

    upper = highest published seq, read first
    rows  = matching events with  after < seq <= upper, oldest first, at most ``limit``
    horizon = the last row's seq if the page is full, else ``upper``

Publication commits every seq after all smaller ones, so once ``upper`` is read, every event up
to it is visible: a reader that continues from ``horizon`` never skips an event and never
rescans events its filter excluded (a filtered reader advances even through pages of other
accounts' events).

Cursors: a client gets ``encode_cursor(seq)``, an opaque string; ``decode_cursor`` also takes
a bare seq (the ``id`` of a stream event), so a client can move between stream and feed.

Expiry: published events are pruned ``EVENT_RETENTION_DAYS`` after publication (by the webhook
dispatcher, which keeps events still owed to a delivery, so pruning may leave holes). ``seq`` is
gap-free from 1 and publication times grow with it, so a cursor ``c`` has lost nothing iff the
event ``c + 1`` still exists and is within the retention: every later one is newer, hence kept.
That is one lookup by the unique ``seq`` index, needs no record of what was pruned, and answers
what the issue asks: a cursor older than the retention is expired, even before pruning runs. A
cursor above the highest seq ever published did not come from this database (a restore, or a
numbering restart) and is expired too. Without a cursor a reader starts at the oldest event
within the retention (older survivors, kept for late deliveries, are not part of the feed).
Known imprecision: the events of a deleted tenant leave holes too, so a cursor of another tenant
right before such a hole is answered 410 (the client resynchronises; nothing is lost).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from webhooks.errors import CursorExpired, InvalidCursor
from webhooks.models import Event
from webhooks.payloads import event_payload

_CURSOR_PREFIX = "s:"
RETENTION_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class Filter:
    """Which events a reader wants. ``tenant_id`` None means every tenant (the stream hub)."""

    tenant_id: int | None
    accounts: frozenset[str] | None = None
    events: frozenset[str] | None = None

    def matches(self, tenant_id: int, account: str, event: str) -> bool:
        return ((self.tenant_id is None or tenant_id == self.tenant_id)
                and (self.accounts is None or account in self.accounts)
                and (self.events is None or event in self.events))


@dataclass
class Page:
    rows: list[Event]
    horizon: int
    upper: int

    @property
    def has_more(self) -> bool:
        return self.horizon < self.upper


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(value: str) -> int:
    """A cursor from ``encode_cursor``, or a bare non-negative seq."""
    value = value.strip()
    if value.isdigit() and value.isascii():
        return _bounded(int(value))
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    number = text[len(_CURSOR_PREFIX):]
    if not text.startswith(_CURSOR_PREFIX) or not (number.isdigit() and number.isascii()):
        raise InvalidCursor()
    return _bounded(int(number))


def _bounded(seq: int) -> int:
    if seq >= 2 ** 63:
        raise InvalidCursor()
    return seq


def head() -> int:
    """The highest published seq (0 when nothing was ever published)."""
    return Event.objects.filter(seq__isnull=False).aggregate(top=Max("seq"))["top"] or 0


def retention_cutoff():
    """Events published before this are past the retention (may be pruned at any moment); a
    few minutes early, so nothing is pruned between the check and the read that follows."""
    days = getattr(settings, "EVENT_RETENTION_DAYS", None)
    if not days:
        return None
    return timezone.now() - timedelta(days=days) + RETENTION_MARGIN


def check_not_expired(after: int) -> None:
    """Raise ``CursorExpired`` when events after ``after`` were (or may now be) pruned."""
    top = head()
    if after > top:
        raise CursorExpired()
    if after == top:
        return
    following = Event.objects.filter(seq=after + 1).values_list("dispatched_at", flat=True)
    published = following.first()
    cutoff = retention_cutoff()
    if published is None or (cutoff is not None and published < cutoff):
        raise CursorExpired()


def oldest_retained_cursor() -> int:
    """The cursor just before the oldest event within the retention (the feed's start)."""
    cutoff = retention_cutoff()
    query = Event.objects.filter(seq__isnull=False)
    if cutoff is not None:
        query = query.filter(dispatched_at__gte=cutoff)
    first = query.order_by("seq").values_list("seq", flat=True).first()
    return first - 1 if first is not None else head()


def read_published(flt: Filter, after: int, limit: int) -> Page:
    """Up to ``limit`` published events matching ``flt`` with ``seq > after``, oldest first."""
    upper = head()
    if upper <= after:
        return Page(rows=[], horizon=after, upper=upper)
    query = Event.objects.filter(seq__gt=after, seq__lte=upper)
    if flt.tenant_id is not None:
        query = query.filter(tenant_id=flt.tenant_id)
    if flt.accounts is not None:
        query = query.filter(account_id__in=flt.accounts)
    if flt.events is not None:
        query = query.filter(event__in=flt.events)
    rows = list(query.order_by("seq")[:limit])
    horizon = rows[-1].seq if len(rows) == limit else upper
    return Page(rows=rows, horizon=horizon, upper=upper)


def feed_page(flt: Filter, after: int | None, limit: int) -> dict:
    """One page of the change feed: ``{"changes", "nextCursor", "hasMore"}``; ``after`` None
    starts at the oldest retained event."""
    if after is None:
        after = oldest_retained_cursor()
    else:
        check_not_expired(after)
    page = read_published(flt, after, limit)
    return {"changes": [event_payload(row) for row in page.rows],
            "nextCursor": encode_cursor(page.horizon), "hasMore": page.has_more}
