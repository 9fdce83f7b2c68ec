"""Every Prometheus metric of emailapi, defined once (``prometheus_client``), and the one-line
helpers the instrumented sites call.

Processes. ``manage.py serve`` runs several processes (web, ``imapworker``,
``webhookdispatcher``, ``sendscheduler``), and a scrape reaches one web process. They share
their metrics through ``prometheus_client``'s multiprocess mode: ``serve`` empties
``EMAILAPI_METRICS_DIR`` (``var/metrics``) when it starts and gives each child
``PROMETHEUS_MULTIPROC_DIR`` pointing there; each process writes its values to files of its
own (by pid) and ``GET /metrics`` sums them (``scrape_registry``). When a child exits,
``serve`` drops its live gauges (``process_exited``); its counters stay in the sum, so totals
never go down while ``serve`` runs. A process started without ``PROMETHEUS_MULTIPROC_DIR``
(tests, a bare ``manage.py imapworker``) keeps its metrics in memory, and its own
``/metrics`` (a web process) shows only them. ``rqworker`` is left out on purpose: rq forks a
child per job, and each fork would leave files of its own behind.

Labels are bounded: an API request is labelled with its URL pattern
(``v1/account/<id:account>/messages``), never the raw path; a webhook delivery with its
subscription and tenant (``GET /metrics`` with a tenant's ``metrics`` token shows only the
series of that tenant).

Gauges computed from the database at scrape time (accounts by state, outbox by state) are not
here: they need the apps' models (``emailapi/api/metrics_view.py``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)

from emailapi.lib import names

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds: API requests answer in milliseconds; IMAP sync passes and webhook answers take longer.
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)

# --- the API ---------------------------------------------------------------------------------
HTTP_REQUESTS = Histogram(
    "emailapi_http_request_duration_seconds",
    "HTTP requests by URL pattern, method and status, and how long they took to answer",
    ["route", "method", "status"], buckets=FAST_BUCKETS)

# --- IMAP workers ----------------------------------------------------------------------------
IMAP_ACCOUNTS_HELD = Gauge(
    "emailapi_imap_accounts_held", "Accounts held by the live IMAP workers",
    multiprocess_mode="livesum")
IMAP_CONNECTIONS = Gauge(
    "emailapi_imap_connections", "Open IMAP connections of the live IMAP workers",
    multiprocess_mode="livesum")
IMAP_CONNECTS = Counter(
    "emailapi_imap_connects_total", "IMAP connection attempts by the workers, by result",
    ["result"])
IMAP_RECONNECTS = Counter(
    "emailapi_imap_reconnects_total",
    "Reconnects the workers scheduled, by why (lost, connect_error, auth_error)", ["reason"])
SYNC_PASSES = Histogram(
    "emailapi_sync_pass_duration_seconds",
    "Sync passes over one folder (its _count is the number of passes) and their duration",
    buckets=SLOW_BUCKETS)
MESSAGES_INDEXED = Counter(
    "emailapi_messages_indexed_total", "Messages written into the index")
IMAP_STEP_WAITS = Histogram(
    "emailapi_imap_step_wait_seconds",
    "How long an IMAP worker's step waited for a thread of its own, by kind: wake (an idling "
    "session's server spoke), timer (a sync after a connect, a poll, an IDLE renewal), connect, "
    "other (a logout)",
    ["kind"], buckets=FAST_BUCKETS)
IMAP_WAKES = Histogram(
    "emailapi_imap_wake_duration_seconds",
    "From an IMAP worker reading an idling session's notice of a change to its sync committed "
    "and IDLE entered again: the worker's share of new-mail latency (_count: such wakes)",
    buckets=SLOW_BUCKETS)

# --- events and webhooks ---------------------------------------------------------------------
EVENTS_RECORDED = Counter(
    "emailapi_events_recorded_total", "Events recorded into the outbox, by name", ["event"])
EVENTS_PUBLISHED = Counter(
    "emailapi_events_published_total", "Events numbered and published (stream, feed, webhooks)")
WEBHOOK_DELIVERIES = Counter(
    "emailapi_webhook_deliveries_total",
    "Webhook delivery attempts by subscription and result (delivered, failed)",
    ["tenant", "subscription", "result"])
WEBHOOK_LATENCY = Histogram(
    "emailapi_webhook_delivery_duration_seconds",
    "Time from sending a webhook request to its answer, by subscription",
    ["tenant", "subscription"], buckets=SLOW_BUCKETS)

# --- sending ---------------------------------------------------------------------------------
OUTBOX_ENQUEUED = Counter(
    "emailapi_outbox_enqueued_total",
    "Outbox entries the send sweep handed to the send queue (due, retried or recovered)")

# --- the database pool of each process ------------------------------------------------------
DB_POOL = Gauge(
    "emailapi_db_pool_connections",
    "PostgreSQL pool connections of the live processes (max, size, idle, busy, waiting)",
    ["stat"], multiprocess_mode="livesum")
DB_GIVEN_UP = Counter(
    "emailapi_db_answers_given_up_total",
    "Waits for a database answer given up: the server said nothing within the process's "
    "statement limit and its grace, and the connection was closed (emailapi.lib.pgdeadline)")

# --- host name lookups (emailapi.lib.names) --------------------------------------------------
NAME_LOOKUPS = Counter(
    "emailapi_name_lookups_total",
    "Host name lookups by result: remembered (a recent answer reused), answered, failed (the "
    "name did not resolve), timed_out (the name server said nothing within the caller's "
    "timeout)", ["result"])


# --- one-line helpers for the instrumented sites --------------------------------------------

def name_lookup(result: str) -> None:
    NAME_LOOKUPS.labels(result).inc()


names.observe = name_lookup  # ``names`` imports nothing of ours (the IMAP layer uses it)


def db_answer_given_up() -> None:
    DB_GIVEN_UP.inc()


def imap_connect(result: str) -> None:
    IMAP_CONNECTS.labels(result).inc()


def imap_reconnect(reason: str) -> None:
    """A reconnect scheduled: after a lost connection (``lost``) or a failed connect
    (``connect_error``, ``auth_error``: counted as that connect's result too)."""
    IMAP_RECONNECTS.labels(reason).inc()
    if reason != "lost":
        IMAP_CONNECTS.labels(reason).inc()


def imap_step_waited(kind: str, seconds: float) -> None:
    IMAP_STEP_WAITS.labels(kind).observe(seconds)


def imap_wake_synced(seconds: float) -> None:
    IMAP_WAKES.observe(seconds)


def imap_worker_tick(held: int, connected: int) -> None:
    """Called by the IMAP worker at each claim tick (with its pool's use)."""
    IMAP_ACCOUNTS_HELD.set(held)
    IMAP_CONNECTIONS.set(connected)
    observe_db_pool()


def timed_sync_pass(func):
    """Decorate a folder's sync: one pass counted, its duration observed (raised or not)."""
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            SYNC_PASSES.observe(time.perf_counter() - started)
    timed.__wrapped__ = func
    timed.__name__, timed.__doc__ = func.__name__, func.__doc__
    return timed


def messages_indexed(count: int) -> None:
    if count:
        MESSAGES_INDEXED.inc(count)


def events_recorded(names) -> None:
    """``names``: the event name of each recorded row."""
    for name in names:
        EVENTS_RECORDED.labels(name).inc()


def events_published(count: int) -> None:
    if count:
        EVENTS_PUBLISHED.inc(count)


class WebhookAttempts:
    """The attempts of one subscription: its label values and children looked up once, not
    per delivery (``labels()`` costs a lock and a dict lookup per call; the dispatcher
    records thousands a second). ``subscription`` has ``pk`` and ``tenant_id``."""

    def __init__(self, subscription):
        self._labels = (str(subscription.tenant_id), str(subscription.pk))
        self._results: dict[bool, object] = {}
        self._latency = WEBHOOK_LATENCY.labels(*self._labels)

    def record(self, ok: bool, duration_ms: float) -> None:
        """One webhook request answered (or given up)."""
        counter = self._results.get(ok)
        if counter is None:  # made when first used: no "failed" series before a failure
            counter = self._results[ok] = WEBHOOK_DELIVERIES.labels(
                *self._labels, "delivered" if ok else "failed")
        counter.inc()
        self._latency.observe(max(0.0, duration_ms) / 1000.0)


def outbox_swept(enqueued: int) -> None:
    if enqueued:
        OUTBOX_ENQUEUED.inc(enqueued)
    observe_db_pool(every=5.0)


_pool_seen = [0.0]


def observe_db_pool(every: float = 0.0) -> None:
    """Write this process's database pool use to ``DB_POOL`` (at most once per ``every``
    seconds); nothing without a pool (SQLite) or when it cannot be read."""
    now = time.monotonic()
    if every and now - _pool_seen[0] < every:
        return
    _pool_seen[0] = now
    try:
        from emailapi.lib import dbpool  # Django's connections: imported when first needed

        shared = dbpool.pool()
        if shared is None:
            return
        for stat, value in dbpool.stats(shared).items():
            DB_POOL.labels(stat).set(value)
    except Exception:  # noqa: BLE001 - metrics never break the process measured
        return


# --- processes -------------------------------------------------------------------------------

def multiprocess_dir() -> str | None:
    """The directory this process shares its metrics through, if any."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_dir(path: Path) -> None:
    """Empty (or make) the shared directory before the group's processes start."""
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def process_exited(pid: int, path: str | None) -> None:
    """Drop the live gauges of a process that ended (its counters stay in the sums)."""
    if not path:
        return
    try:
        multiprocess.mark_process_dead(pid, path)
    except OSError:
        pass


def scrape_registry() -> CollectorRegistry:
    """What ``GET /metrics`` exposes: every process's values in multiprocess mode, else this
    process's own registry."""
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry
