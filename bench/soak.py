"""Soak: everything ``make run`` starts, under a steady load and a schedule of faults.

``manage.py serve`` (daphne, imapworker, rqworker, sendscheduler, webhookdispatcher, as
``make run`` runs them) on a throwaway PostgreSQL database and a Redis DB of its own
(``--redis-db``, 6 by default; refused unless empty), on a free port, with its own
``EMAILAPI_REDIS_PREFIX``; ``--mailboxes`` (50) mailboxes on a private Dovecot, each with
the fixture messages of ``tests/servers/seed.py`` plus one with a 7-bit text attachment; a
recording SMTP server for sends; a webhook subscription (every event) to a fast receiver.

Load, for ``--minutes`` (10): ``--clients`` (4) API clients each doing a steady mix of
listings, message gets, source and attachment downloads, IMAP and index searches, flag
changes, account and outbox reads and sends (``_soak_load.MIX``); one new message APPENDed
every second, round robin over the mailboxes, each with a Message-ID of its own; the accounts'
states polled once a second through ``GET /v1/accounts`` (part of the load) and read once a
second from the table that route reads (for the reconnect figures: the web process may be
the one failing).

Faults, after a warm-up (10 % of the run, 15-60 s), at fixed fractions of the rest (so a
``--minutes 2`` run has all of them, compressed): a ``pg_terminate_backend`` storm (every
session of the soak's database, every 0.5 s, for up to 30 s), 20 accounts on hung IMAP servers
(10 silent, 10 that greet then hang), ``kill -9`` of the imapworker, the webhookdispatcher and
the rqworker (serve's supervisor restarts them), a Redis FLUSHDB of its own DB, the webhook
receiver down (listener closed, connections cut) for up to 2 minutes, the dispatcher killed
again in the middle of a run of the backlog that leaves (at a burst of deliveries), a second
storm, and the imapworker and the dispatcher killed once more.

Then the load stops; up to ``--drain`` seconds for the webhooks still owed and for every
account to be connected; then the end figures. The report (printed; ``--json FILE`` too)
gives each goal as met or NOT MET:

* requests by kind and status: no 500; 503 only inside a storm (a request overlapping
  [storm start, storm end + ``--storm-grace`` s]); every request answered (no refused or cut
  connection, timeout or truncated body);
* events lost: every APPENDed Message-ID must arrive as a ``messageNew`` webhook (the missing
  are classified: not indexed, no event, delivery pending or failed);
* duplicate deliveries (same event id twice) no more than were in flight at the dispatcher
  kills, bounded by the receiver's open connections at each kill (one request at a time each);
* each process's RSS after the warm-up and at the end: growth under 10 %;
* database sessions at the end by process (matched by socket) and state: none busy (the
  least of 5 samples), ``/health``'s pool figures if it has any, and 20 concurrent
  ``GET /v1/accounts`` all answered 200 within 2 s (a leaked pool answers in 20 s, or 500);
* time after each fault until every healthy account reads ``connected`` again (after an
  imapworker died: with a ``stateChanged`` after its death, so a stale ``connected`` does not
  count), goal within lease TTL + claim interval + 30 s (52 s by default);
* no child of serve exiting except by the soak's ``kill -9``.

Also printed, not judged: APPEND-to-webhook latency, how long after the receiver came back
the mail appended while it was down arrived, sends accepted against sends the SMTP server got,
serve's log by level and exception, how serve stopped, and processes serve's children left
behind (rq's work-horse, in a process group of its own, and scheduler outlive a kill -9 of
their worker).

Needs root (Dovecot), PostgreSQL and Redis like the other benches. Everything it starts is
stopped at the end, on Ctrl-C or on an error: serve (SIGTERM, then SIGKILL to its group and
to whatever its children left behind), Dovecot, the servers; the database is dropped and the
Redis DB flushed. Logs stay in the directory printed first. On a machine where test runs use
every Redis DB number (``EMAILAPI_TEST_SLOT`` 3 takes 3 down to 0), ``--private-redis`` starts a
redis-server of the soak's own instead.

    .venv/bin/python bench/soak.py                       # the issue's 10 minutes (~13 in all)
    .venv/bin/python bench/soak.py --minutes 2 --private-redis --json /tmp/soak.json  # dev
"""

from __future__ import annotations

import argparse
import contextlib
import email.policy
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _engine, _soak_report  # noqa: E402
from bench._soak_load import (  # noqa: E402
    Api,
    Appender,
    Catalog,
    Client,
    DbStatePoller,
    StatePoller,
    Stats,
)
from bench._soak_procs import (  # noqa: E402
    Database,
    ProcessMonitor,
    Storm,
    connections_by_process,
    start_serve,
    stop_serve,
)
from bench._soak_servers import SwitchableReceiver  # noqa: E402
from tests.servers import seed  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402
from tests.servers.hung_imap import HungImapServer  # noqa: E402
from tests.servers.net import find_free_port  # noqa: E402
from tests.servers.smtp import SmtpServer  # noqa: E402

HUNG_ACCOUNTS = 20


@dataclass
class Fault:
    """One planned fault: ``at`` seconds into the load, done by ``Run.<action>``."""

    at: float
    action: str
    label: str
    seconds: float = 0.0  # how long it lasts (storms, receiver down)
    done_at: float | None = None  # time.time() when it was done
    details: dict = field(default_factory=dict)
    handle: object = None  # what carries it out, when it runs on (a Storm)


def plan(load_seconds: float) -> tuple[float, list[Fault]]:
    """The warm-up and the faults: fixed fractions of what follows the warm-up."""
    warmup = min(60.0, max(15.0, 0.1 * load_seconds))
    rest = load_seconds - warmup
    storm = max(5.0, min(30.0, 0.06 * rest))
    receiver_down = max(10.0, min(120.0, 0.23 * rest))
    back = 0.45 + receiver_down / rest
    steps = [
        (0.02, "storm", "pg_terminate_backend storm", storm),
        (0.10, "hang", f"{HUNG_ACCOUNTS} accounts on hung IMAP servers", 0.0),
        (0.15, "kill_imapworker", "kill -9 imapworker", 0.0),
        (0.27, "kill_webhookdispatcher", "kill -9 webhookdispatcher", 0.0),
        (0.33, "kill_rqworker", "kill -9 rqworker", 0.0),
        (0.39, "flush_redis", "Redis FLUSHDB (its own DB)", 0.0),
        (0.45, "receiver_down", "webhook receiver down", receiver_down),
        # The backlog the receiver's absence left goes out in runs: kill the dispatcher in
        # the middle of one (waiting at most this long for a burst of deliveries).
        (back + 0.005, "kill_dispatcher_in_burst", "kill -9 webhookdispatcher mid-run",
         0.06 * rest),
        (0.76, "storm", "pg_terminate_backend storm", storm),
        (0.85, "kill_imapworker", "kill -9 imapworker", 0.0),
        (0.93, "kill_webhookdispatcher", "kill -9 webhookdispatcher", 0.0),
    ]
    return warmup, [Fault(warmup + f * rest, action, label, seconds)
                    for f, action, label, seconds in steps]


def seed_mailboxes(dovecot: Dovecot, smtp: SmtpServer, count: int) -> list:
    """``count`` mailboxes with the fixture messages, plus a message whose attachment is
    7-bit text (streamed with a Content-Length: the case where daphne starts a kept-alive
    connection's next request inside the previous one's context, ``emailapi.asgi_context``)."""
    notes = EmailMessage(policy=email.policy.SMTP)
    notes["From"], notes["To"] = "Ann <ann@example.test>", "Bob <bob@example.test>"
    notes["Subject"], notes["Message-ID"] = "Soak notes", "<soak-notes@soak.example.test>"
    notes.set_content("See the notes attached.\n")
    notes.add_attachment("A line of plain notes.\n" * 40, subtype="plain", filename="notes.txt")
    messages = [*seed.build_messages(), notes.as_bytes()]
    users = []
    for _ in range(count):
        user = dovecot.add_user()
        seed.seed_mailbox(user, messages=messages)
        smtp.add_user(user.username, user.password)
        users.append(user)
    return users


def _hung_settings(server: HungImapServer) -> dict:
    """The API's ``imap`` object for an account on a hung server."""
    return {"host": "127.0.0.1", "port": server.port, "secure": False,
            "auth": {"user": "hung", "pass": "never-checked"}}


def register(users, smtp: SmtpServer, receiver: SwitchableReceiver) -> tuple[str, dict]:
    """The tenant, its token, the mailboxes and the webhook subscription (before serve
    starts, as the other benches do)."""
    from accounts import services
    from webhooks import subscriptions

    tenant = services.create_tenant("Soak")
    _, token = services.issue_token(tenant, "soak", ["api"])
    addresses = {}
    for number, user in enumerate(users):
        account = f"box{number:02d}"
        imap = user.imap_settings(secure=False)
        imap["tls"] = {"rejectUnauthorized": False}  # Dovecot's certificate is self-signed
        services.register_account(tenant, {
            "account": account, "name": f"Box {number}", "email": user.username,
            "imap": imap, "smtp": smtp.smtp_settings(user.username, user.password)})
        addresses[account] = user.username
    subscriptions.create(tenant, {"url": receiver.url, "events": ["*"]})
    return token, addresses


class Run:
    """The load, the faults and what is watched while they happen."""

    def __init__(self, args, env, serve, port: int, token: str, users: dict, addresses: dict,
                 receiver: SwitchableReceiver, smtp: SmtpServer, hung: list, log: Path):
        self.args, self.env, self.serve, self.port = args, env, serve, port
        self.token, self.users, self.receiver, self.smtp = token, users, receiver, smtp
        self.hung, self.log = hung, log
        self.db_name = env["DATABASE_URL"].rsplit("/", 1)[1]
        self.db = Database(env["DATABASE_URL"])
        self.admin_url = f"{_engine.PG}/postgres"
        self.stats = Stats()
        self.halt_load, self.halt_watch = threading.Event(), threading.Event()
        self.catalog = Catalog(list(users))
        self.sends: list[str] = []
        self.monitor = ProcessMonitor(serve)
        self.poller = StatePoller(port, token, self.stats, self.halt_watch)
        self.states = DbStatePoller(self.db.query, self.halt_watch)
        self.appender = Appender(users, args.interval, self.halt_load, str(os.getpid()))
        self.clients = [Client(n, port, token, self.stats, self.catalog, addresses,
                               self.halt_load, args.think, self.sends)
                        for n in range(args.clients)]
        self.api = Api(port, token, self.stats)
        self.storms: list[Storm] = []
        self.dispatcher_kills: list[dict] = []
        self.threads: list[threading.Thread] = []
        self.rss_start: dict = {}
        self.rss_end: dict = {}
        self.load_started = self.load_ended = 0.0

    # -- getting ready ---------------------------------------------------------------------

    def wait_ready(self, timeout: float) -> float:
        """Until /health answers and every mailbox is connected and initially synced."""
        started = time.monotonic()
        self.monitor.start()
        probe = Api(self.port, self.token, Stats(), timeout=5)

        def healthy():
            if self.serve.poll() is not None:
                raise RuntimeError(f"serve exited with code {self.serve.returncode}; "
                                   f"see {self.log}")
            return probe.call("health", "GET", "/health")[0] == 200

        _engine.wait_for(healthy, timeout=timeout, interval=0.5, what="/health to answer 200")
        total = len(self.users)
        _engine.wait_for(lambda: self.db.query(
            "SELECT count(*) FROM accounts_emailaccount WHERE state = 'connected' "
            "AND initialized_at IS NOT NULL")[0][0] >= total, timeout=timeout, interval=0.5,
            what=f"{total} accounts connected and synced")
        return time.monotonic() - started

    # -- the run ---------------------------------------------------------------------------

    def run(self, warmup: float, faults: list[Fault]) -> None:
        self.load_started = time.time()
        began = time.monotonic()
        self.poller.start()
        self.states.start()
        self.appender.start()
        for client in self.clients:
            client.start()
        steps = [(warmup, "warmed_up", None)] + [(f.at, f.action, f) for f in faults]
        for at, action, fault in sorted(steps, key=lambda s: s[0]):
            self.sleep_until(began + at)
            if action == "warmed_up":
                self.rss_start = self.monitor.rss()
                print(f"{self.clock()} warm-up done: RSS start figures taken", flush=True)
                continue
            fault.done_at = time.time()
            getattr(self, action)(fault)
            print(f"{self.clock()} {fault.label} {fault.details or ''}", flush=True)
        self.sleep_until(began + self.args.minutes * 60)
        self.halt_load.set()
        for thread in [*self.clients, self.appender]:
            thread.join(timeout=60)
        for thread in self.threads:
            thread.join(timeout=180)
        self.load_ended = time.time()
        print(f"{self.clock()} load stopped", flush=True)

    def clock(self) -> str:
        return f"[{time.time() - self.load_started:6.1f} s]"

    def sleep_until(self, deadline: float) -> None:
        while (left := deadline - time.monotonic()) > 0:
            if self.serve.poll() is not None:
                raise RuntimeError(f"serve itself exited ({self.serve.returncode})")
            time.sleep(min(left, 1.0))

    def background(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    # -- faults (each named by a Fault's action) ---------------------------------------------

    def storm(self, fault: Fault) -> None:
        storm = Storm(self.admin_url, self.db_name, fault.seconds)
        self.storms.append(storm)
        fault.details["seconds"] = fault.seconds
        fault.handle = storm
        self.background(storm.run)

    def hang(self, fault: Fault) -> None:
        """Register the hung accounts through the API, in the background (the requests may
        be slow: the schedule goes on)."""
        def register_all():
            answers = []
            for number in range(HUNG_ACCOUNTS):
                server = self.hung[number % len(self.hung)]
                status, _ = self.api.call("register", "POST", "/v1/account", {
                    "account": f"hung{number:02d}", "name": f"Hung {number}",
                    "email": f"hung{number}@example.test", "imap": _hung_settings(server)})
                answers.append(status)
            fault.details["registered"] = sum(1 for s in answers if s == 200)
            if fault.details["registered"] != HUNG_ACCOUNTS:
                fault.details["answers"] = sorted({str(s) for s in answers})

        fault.details["silent/greeting"] = f"{HUNG_ACCOUNTS // 2}/{HUNG_ACCOUNTS // 2}"
        self.background(register_all)

    def kill_imapworker(self, fault: Fault) -> None:
        fault.details["pid"] = self.monitor.kill("imapworker")

    def kill_rqworker(self, fault: Fault) -> None:
        fault.details["pid"] = self.monitor.kill("rqworker")

    def kill_webhookdispatcher(self, fault: Fault) -> None:
        # In flight at the kill: each open connection carries at most one request.
        in_flight = self.receiver.open_connections()
        pid = self.monitor.kill("webhookdispatcher")
        try:  # what the dead dispatcher had claimed (its successor is not up yet)
            delivering = self.db.query(
                "SELECT count(*) FROM webhooks_delivery WHERE state = 'delivering'")[0][0]
        except Exception:  # noqa: BLE001 - a figure for the report, not a reason to stop
            delivering = None
        fault.details.update(pid=pid, open_connections=in_flight, delivering=delivering)
        if pid:
            self.dispatcher_kills.append({"at": fault.done_at, "in_flight": in_flight,
                                          "delivering": delivering})

    def kill_dispatcher_in_burst(self, fault: Fault) -> None:
        """Wait (in the background, at most ``fault.seconds``) until the receiver is getting
        deliveries in a burst (3 within 50 ms: a run of a lane's backlog), then kill -9 the
        dispatcher, so the deliveries of that run are in flight."""
        def wait_and_kill():
            deadline = time.monotonic() + fault.seconds
            burst = False
            while time.monotonic() < deadline and not burst:
                recent = time.time() - 0.05
                burst = sum(1 for d in self.receiver.deliveries[-5:] if d.at >= recent) >= 3
                time.sleep(0.005)
            fault.done_at, fault.seconds = time.time(), 0.0
            fault.details["burst"] = burst
            self.kill_webhookdispatcher(fault)
            print(f"{self.clock()} {fault.label} {fault.details}", flush=True)

        self.background(wait_and_kill)

    def flush_redis(self, fault: Fault) -> None:
        _engine.flush_redis(self.env["REDIS_URL"])

    def receiver_down(self, fault: Fault) -> None:
        self.receiver.down()
        fault.details["seconds"] = fault.seconds

        def back_up():
            time.sleep(fault.seconds)
            self.receiver.up()

        self.background(back_up)

    def shutdown(self) -> float | None:
        """Stop serve, then whatever it started that is no longer below it."""
        took = stop_serve(self.serve)
        self.monitor.kill_orphans()
        time.sleep(0.5)
        for pid, cmd in self.monitor.orphans().items():
            print(f"warning: pid {pid} ({cmd}) outlived serve and SIGKILL", file=sys.stderr)
        return took

    # -- after the load ------------------------------------------------------------------------

    def drain(self, seconds: float) -> float:
        """Until every APPEND has its webhook and every healthy account reads connected, or
        ``seconds`` have passed; returns how long it took."""
        started = time.monotonic()
        expected = {a.message_id for a in self.appender.appended}
        healthy = set(self.users)

        def done():
            arrived = {d.message_id for d in list(self.receiver.deliveries)
                       if d.event == "messageNew"}
            snapshot = self.states.snapshots[-1] if self.states.snapshots else None
            # Connected by the imapworker running now, not a stale word of a dead one.
            since = max(self.monitor.deaths("imapworker"), default=0.0) - 1.0
            connected = snapshot is not None and snapshot.at > time.time() - 3 and all(
                snapshot.states.get(a, ("", 0.0))[0] == "connected"
                and snapshot.states[a][1] >= since for a in healthy)
            return expected <= arrived and connected

        with contextlib.suppress(TimeoutError):
            _engine.wait_for(done, timeout=seconds, interval=1.0)
        return time.monotonic() - started

    def measure_end(self) -> dict:
        """RSS, database sessions by process, /health and a pool probe, once quiet."""
        time.sleep(5)  # let the last requests' connections go back to their pools
        self.halt_watch.set()
        self.rss_end = self.monitor.rss()
        self.monitor.sample()
        stray = self.monitor.orphans()
        samples = []
        for _ in range(5):
            samples.append(connections_by_process(self.db, self.db_name, self.serve, stray))
            time.sleep(0.5)
        health_status, health = Api(self.port, self.token, Stats(), timeout=30).call(
            "health", "GET", "/health")
        probe = self.pool_probe(20)
        self.monitor.stop()
        return {"sessions": samples, "health": {"status": health_status, "body": health},
                "probe": probe, "orphans": stray}

    def pool_probe(self, count: int) -> dict:
        """``count`` concurrent ``GET /v1/accounts``: twice the web pool's size, so a pool
        with connections that never came back makes some of them wait."""
        results = []
        stats = Stats()

        def one():
            api = Api(self.port, self.token, stats, timeout=30)
            started = time.monotonic()
            status, _ = api.call("probe", "GET", "/v1/accounts?pageSize=1")
            results.append((status, time.monotonic() - started))
            api.close()

        threads = [threading.Thread(target=one) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return {"statuses": sorted(str(s) for s, _ in results),
                "slowest_s": max((t for _, t in results), default=None)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load and faults")
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--clients", type=int, default=4, help="API client threads")
    parser.add_argument("--think", type=float, default=0.02,
                        help="mean pause between a client's requests, s")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between APPENDs")
    parser.add_argument("--drain", type=float, default=None,
                        help="seconds to wait after the load for owed webhooks and reconnects "
                             "(default: a fifth of the run, 60-180 s)")
    parser.add_argument("--storm-grace", type=float, default=3.0,
                        help="seconds after a storm in which a 503 still counts as inside it")
    parser.add_argument("--redis-db", type=int, default=6,
                        help="DB number of the shared Redis (BENCH_REDIS) to use; must be empty")
    parser.add_argument("--private-redis", action="store_true",
                        help="start a redis-server of its own instead (DB --redis-db of it)")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON too")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a goal is not met (default: 0 once the run completes)")
    args = parser.parse_args()
    if args.drain is None:
        args.drain = min(180.0, max(60.0, 0.2 * args.minutes * 60))
    return args


@contextlib.contextmanager
def private_redis():
    """A redis-server of the soak's own on a free port, for machines where every DB number
    of the shared Redis may be some test run's (they flush theirs, and the soak flushes its)."""
    import redis

    port = find_free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    url = f"redis://127.0.0.1:{port}"
    try:
        _engine.wait_for(lambda: _ping(redis, url), timeout=10, what="the private redis-server")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _ping(redis, url: str) -> bool:
    try:
        return redis.Redis.from_url(url, socket_timeout=1).ping()
    except redis.ConnectionError:
        return False


def check_redis_db(number: int) -> None:
    import redis

    client = redis.Redis.from_url(f"{_engine.REDIS_BASE.rstrip('/')}/{number}")
    keys = client.dbsize()
    client.close()
    if keys:
        sys.exit(f"Redis DB {number} holds {keys} keys: someone else's; pick a free one with "
                 f"--redis-db (the soak flushes its DB)")


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's deprecation chatter
    warmup, faults = plan(args.minutes * 60)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    print(f"soak: {args.minutes:g} min of load, {args.mailboxes} mailboxes, {args.clients} "
          f"clients; logs in {workdir}", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # a stopped soak cleans up like Ctrl-C
    db_name = f"bench_soak_{os.getpid()}"
    with contextlib.ExitStack() as stack:
        if args.private_redis:
            _engine.REDIS_BASE = stack.enter_context(private_redis())
        check_redis_db(args.redis_db)
        dovecot = stack.enter_context(Dovecot(
            extra_config=_engine.dovecot_limits(args.mailboxes + HUNG_ACCOUNTS),
            startup_timeout=30))
        smtp = stack.enter_context(SmtpServer(starttls=False))
        hung = [HungImapServer("silent").start(), HungImapServer("greet").start()]
        for server in hung:
            stack.callback(server.stop)
        receiver = SwitchableReceiver().start()
        stack.callback(receiver.stop)
        started = time.monotonic()
        users = seed_mailboxes(dovecot, smtp, args.mailboxes)
        print(f"{args.mailboxes} mailboxes seeded in {time.monotonic() - started:.1f} s",
              flush=True)
        env = stack.enter_context(_engine.throwaway_database(db_name, args.redis_db))
        env["WEBHOOKS_ALLOW_PRIVATE"] = "true"  # the receiver is on loopback
        os.environ.update(env)
        _engine.setup_django()
        token, addresses = register(users, smtp, receiver)
        _engine._close_django_connections()
        port = find_free_port()
        log = workdir / "serve.log"
        serve = start_serve(env, port, log)
        stack.callback(stop_serve, serve)
        mailboxes = {f"box{n:02d}": user for n, user in enumerate(users)}
        run = Run(args, env, serve, port, token, mailboxes, addresses, receiver, smtp, hung, log)
        stack.callback(run.db.close)
        stack.callback(run.shutdown)
        ready = run.wait_ready(timeout=300)
        print(f"serve on port {port}: all {args.mailboxes} accounts connected and synced "
              f"{ready:.1f} s after start", flush=True)
        run.run(warmup, faults)
        drained = run.drain(args.drain)
        print(f"drained in {drained:.1f} s (bound {args.drain:.0f} s)", flush=True)
        end = run.measure_end()
        end["stop_s"] = run.shutdown()  # first, so serve's log is complete for the report
        report = _soak_report.build(run, faults, end, drained, dovecot, workdir)
    _soak_report.show(report)
    if args.json:
        _soak_report.write_json(report, args.json)
    failed = [g for g in report["goals"] if not g["met"]]
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: everything the soak started is stopped", file=sys.stderr)
        sys.exit(130)
