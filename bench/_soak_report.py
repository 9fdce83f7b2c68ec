"""The soak's report (``bench/soak.py``): figures from what was recorded during the run, each
goal judged met or not, printed and as JSON.

Not a benchmark itself (``bench/run.py`` skips files starting with an underscore).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

from bench import _engine
from bench._soak_procs import Storm, exit_codes, killed_at_stop

FAILED_TRANSPORT = ("conn", "timeout", "truncated")
BUSY_STATES = ("active", "idle in transaction", "idle in transaction (aborted)", "fastpath")
PROBE_SECONDS = 2.0
RSS_DRIFT = 0.10
SETTLE = 10.0  # s after a fault's end in which what it set off still counts as its doing


def _mid(value: str | None) -> str:
    """A Message-ID without its angle brackets or surrounding space."""
    return (value or "").strip().strip("<>")


def build(run, faults, end: dict, drained: float, dovecot, workdir: Path) -> dict:
    from django.conf import settings

    grace = run.args.storm_grace
    windows = [(s.started, (s.ended or time.time()) + grace) for s in run.storms if s.started]
    report = {
        "config": {"minutes": run.args.minutes, "mailboxes": len(run.users),
                   "clients": run.args.clients, "append_interval_s": run.args.interval,
                   "drain_bound_s": run.args.drain, "storm_grace_s": grace, "logs": str(workdir)},
        "drained_s": round(drained, 1),
        "storms": [{"at_s": round(s.started - run.load_started, 1),
                    "until_s": round((s.ended or s.started) - run.load_started, 1),
                    "terminated": s.terminated} for s in run.storms],
    }
    report["requests"] = _requests(run, windows)
    report["events"] = _events(run, windows, faults)
    report["sends"] = _sends(run)
    report["processes"] = _processes(run)
    report["shutdown"] = _shutdown(run, end)
    report["pools"] = _pools(end)
    bound = settings.IMAP_LEASE_TTL + settings.IMAP_CLAIM_INTERVAL + 30
    report["faults"] = _recoveries(run, faults, bound)
    report["accounts_at_end"] = _accounts_at_end(run)
    report["states_timeline"] = _states_timeline(run, faults)
    report["recovery_bound_s"] = bound
    report["logs"] = _log_summary(run.log, dovecot)
    report["goals"] = _goals(report, bound)
    return report


# -- requests ------------------------------------------------------------------------------


def _requests(run, windows) -> dict:
    requests = run.stats.snapshot()
    table: dict[str, Counter] = {}
    codes: Counter = Counter()
    first_seen: dict[str, float] = {}
    latencies: dict[str, list[float]] = {}
    inside = outside = 0
    for r in requests:
        status = str(r.status)
        if r.status == 503:
            in_storm = any(r.started <= until and r.ended >= start for start, until in windows)
            inside += in_storm
            outside += not in_storm
            status = "503 storm" if in_storm else "503 outside"
        table.setdefault(r.kind, Counter())[status] += 1
        if isinstance(r.status, int) and r.status < 300:
            latencies.setdefault(r.kind, []).append(r.ended - r.started)
        else:
            key = f"{r.status} {r.code}".strip()
            codes[key] += 1
            first_seen.setdefault(key, r.started - run.load_started)
    five = sum(1 for r in requests if isinstance(r.status, int) and r.status >= 500
               and r.status != 503)
    return {
        "total": len(requests),
        "by_kind": {kind: dict(counts) for kind, counts in sorted(table.items())},
        "latency_ms": {kind: {"p50": round(_engine.percentile(v, 0.5) * 1000, 1),
                              "p99": round(_engine.percentile(v, 0.99) * 1000, 1),
                              "max": round(max(v) * 1000, 1)}
                       for kind, v in sorted(latencies.items())},
        "failures": [{"what": key, "count": n, "first_at_s": round(first_seen[key], 1)}
                     for key, n in codes.most_common()],
        "5xx_not_503": five,
        "503_inside_storm": inside,
        "503_outside_storm": outside,
        "unanswered": sum(1 for r in requests if r.status in FAILED_TRANSPORT),
    }


# -- events --------------------------------------------------------------------------------


def _events(run, windows, faults) -> dict:
    deliveries = list(run.receiver.deliveries)
    arrived: dict[str, float] = {}
    for d in deliveries:
        if d.event == "messageNew" and d.message_id:
            arrived.setdefault(_mid(d.message_id), d.at)
    appended = run.appender.appended
    lost = [a for a in appended if _mid(a.message_id) not in arrived]
    states = run.states.snapshots[-1].states if run.states.snapshots else {}
    latencies = [arrived[_mid(a.message_id)] - a.at for a in appended
                 if _mid(a.message_id) in arrived]
    counts = Counter(d.event_id for d in deliveries)
    duplicated = {event_id: n for event_id, n in counts.items() if n > 1}
    kills = [k["at"] for k in run.dispatcher_kills]
    deaths = run.monitor.deaths("webhookdispatcher")
    downs = [f.done_at for f in faults if f.action == "receiver_down" and f.done_at]
    causes: Counter = Counter()
    examples = []
    for event_id in duplicated:
        copies = sorted((d for d in deliveries if d.event_id == event_id), key=lambda d: d.at)
        first = copies[0].at
        if any(0 <= t - first <= 10 for t in [*kills, *deaths]):
            causes["a dispatcher death within 10 s after the first copy"] += 1
        elif any(start - 2 <= first <= until for start, until in windows):
            # A copy sent just before its session was terminated is never recorded as sent.
            causes["first copy inside a storm (or 2 s before it)"] += 1
        elif any(0 <= t - first <= 3 for t in downs):
            causes["first copy just before the receiver went down"] += 1
        else:
            causes["other"] += 1
        if len(examples) < 10:
            examples.append({"event": copies[0].event, "account": copies[0].account,
                             "event_id": event_id, "copies_at_s": [
                                 round(d.at - run.load_started, 1) for d in copies]})
    backlog = []
    for fault in faults:
        if fault.action == "receiver_down" and fault.done_at:
            back = fault.done_at + fault.seconds
            owed = [a for a in appended if fault.done_at <= a.at <= back]
            late = [arrived[_mid(a.message_id)] - back for a in owed
                    if _mid(a.message_id) in arrived]
            backlog.append({"down_at_s": round(fault.done_at - run.load_started, 1),
                            "appended_while_down": len(owed),
                            "last_arrived_after_back_s": round(max(late), 1) if late else None,
                            "never_arrived": len(owed) - len(late)})
    return {
        "appended": len(appended),
        "timeline": [[round(a.at - run.load_started, 1), a.account, a.message_id,
                      round(arrived[_mid(a.message_id)] - a.at, 1)
                      if _mid(a.message_id) in arrived else None] for a in appended],
        "receiver_backlog": backlog,
        "append_failures": len(run.appender.failures),
        "append_failure_examples": run.appender.failures[:3],
        "deliveries": len(deliveries),
        "by_event": dict(Counter(d.event for d in deliveries).most_common()),
        "lost": len(lost),
        "lost_why": dict(Counter(_why_lost(run, a, states) for a in lost).most_common()),
        "lost_examples": [f"{a.account} {a.message_id} appended at "
                          f"{a.at - run.load_started:.1f} s" for a in lost[:5]],
        "latency_s": ({"p50": round(_engine.percentile(latencies, 0.5), 2),
                       "p99": round(_engine.percentile(latencies, 0.99), 2),
                       "max": round(max(latencies), 2)} if latencies else None),
        "duplicates": sum(n - 1 for n in duplicated.values()),
        "duplicated_events": len(duplicated),
        "duplicate_causes": dict(causes),
        "duplicate_examples": examples,
        "in_flight_at_kills": sum(k["in_flight"] for k in run.dispatcher_kills),
        "dispatcher_kills": [{"at_s": round(k["at"] - run.load_started, 1),
                              "open_connections": k["in_flight"],
                              "deliveries_marked_delivering": k["delivering"]}
                             for k in run.dispatcher_kills],
    }


def _why_lost(run, appended, states: dict) -> str:
    """Where a message that never arrived as a webhook got stuck, and whether its account
    was connected at the end by the imapworker then running."""
    state = states.get(appended.account, ("?", 0.0))
    if state[0] == "connected":
        where = "reconnected by the last worker" if _fresh(run, state) else (
            "reads connected, not since the last imapworker died")
    else:
        where = state[0]
    return f"{_stage_lost(appended)} (account {where})"


def _stage_lost(appended) -> str:
    from mailboxes.models import Message
    from webhooks.models import Delivery, Event

    mid = _mid(appended.message_id)
    indexed = Message.objects.filter(email_account__account_id=appended.account,
                                     message_id__in=[mid, f"<{mid}>"]).exists()
    event = (Event.objects.filter(event="messageNew", account_id=appended.account,
                                  data__messageId__in=[mid, f"<{mid}>"])
             .order_by("created_at").first())
    if event is None:
        return "indexed, no messageNew recorded" if indexed else "not indexed"
    if event.seq is None:
        return "event recorded, never published"
    states = sorted(set(Delivery.objects.filter(event=event).values_list("state", flat=True)))
    if not states:
        return "published, no delivery created"
    return "delivery " + "/".join(states)


# -- sends ---------------------------------------------------------------------------------


def _sends(run) -> dict:
    from django.db.models import Count

    from mailboxes.models import OutboxEntry

    accepted = [_mid(m) for m in run.sends]
    received = Counter(_mid(m.message["Message-ID"]) for m in list(run.smtp.messages))
    states = dict(OutboxEntry.objects.values_list("state").annotate(n=Count("id"))
                  .values_list("state", "n"))
    return {"accepted": len(accepted),
            "arrived": sum(1 for m in accepted if received.get(m)),
            "not_arrived": sum(1 for m in accepted if not received.get(m)),
            "arrived_twice": sum(1 for m in accepted if received.get(m, 0) > 1),
            "outbox_states": states}


# -- processes -----------------------------------------------------------------------------


def _processes(run) -> dict:
    codes = exit_codes(run.log)
    rows = {}
    for role in sorted(set(run.rss_start) | set(run.rss_end)):
        start, end = run.rss_start.get(role, {}), run.rss_end.get(role, {})
        before, after = start.get("rss_kib"), end.get("rss_kib")
        rows[role] = {
            "pid_start": start.get("pid"), "pid_end": end.get("pid"),
            "rss_start_mib": round(before / 1024, 1) if before else None,
            "rss_end_mib": round(after / 1024, 1) if after else None,
            "peak_mib": round(run.monitor.peak_kib[role] / 1024, 1)
            if role in run.monitor.peak_kib else None,
            "drift": round((after - before) / before, 3) if before and after else None,
            "restarted": start.get("pid") != end.get("pid"),
        }
    exits = [{"at_s": round(e.at - run.load_started, 1), "role": e.role, "pid": e.pid,
              "code": codes.get(e.pid), "ours": e.ours} for e in run.monitor.exits]
    return {"rss": rows, "exits": exits,
            "unexpected_exits": [e for e in exits if not e["ours"]]}


def _shutdown(run, end: dict) -> dict:
    """How serve stopped at the end (SIGTERM): not a goal, but a child that needs SIGKILL
    drops its work instead of finishing it."""
    return {"stop_s": None if end["stop_s"] is None else round(end["stop_s"], 1),
            "killed_by_serve_at_stop": killed_at_stop(run.log),
            "orphans_before_stop": {str(pid): cmd for pid, cmd in end["orphans"].items()}}


# -- pools ---------------------------------------------------------------------------------


def _pools(end: dict) -> dict:
    samples = end["sessions"]
    who_all = sorted({who for sample in samples for who in sample})
    held, busy = {}, {}
    for who in who_all:
        states = [sample.get(who, {}) for sample in samples]
        held[who] = states[-1]
        busy[who] = min(sum(n for state, n in s.items() if state in BUSY_STATES)
                        for s in states)
    health = end["health"]
    return {"sessions_at_end": held, "busy_min_of_samples": busy,
            "health": health, "health_pool_busy": _health_pool_busy(health.get("body")),
            "probe": end["probe"]}


def _health_pool_busy(body) -> int | None:
    """Connections in use according to /health, if it reports a pool: ``size - available``
    (psycopg_pool's get_stats names, snake or camel case) or a busy/in-use count."""
    found = []

    def walk(node):
        if not isinstance(node, dict):
            return
        keys = {re.sub(r"[_\-]", "", k).lower(): v for k, v in node.items()}
        numbers = {k: v for k, v in keys.items() if isinstance(v, int | float)}
        for name in ("busy", "inuse", "used", "checkedout", "poolbusy", "poolinuse"):
            if name in numbers:
                found.append(int(numbers[name]))
                return
        size = numbers.get("poolsize", numbers.get("size"))
        available = numbers.get("poolavailable", numbers.get("available",
                                                             numbers.get("idle")))
        if size is not None and available is not None:
            found.append(int(size - available))
            return
        for value in node.values():
            walk(value)

    walk(body)
    return sum(found) if found else None


# -- reconnects ----------------------------------------------------------------------------


def _recoveries(run, faults, bound: float) -> list[dict]:
    """Per fault: how long until every healthy account read ``connected`` again.

    Accounts disturbed by a fault show as a dip: a run of polls where not all of them are
    connected. The dips that begin between the fault and ``SETTLE`` seconds after its end (an
    imapworker may die a few seconds into a storm) or are going on when it starts are the
    fault's; it is over at the first poll after the last of them. Once an imapworker has died
    (in that span), an account counts as connected only with a ``stateChanged`` after the
    death: a worker that is gone cannot vouch for its accounts (``stale`` counts those that
    read ``connected`` anyway)."""
    healthy = set(run.users)
    snapshots = list(run.states.snapshots)
    worker_deaths = run.monitor.deaths("imapworker") + [
        f.done_at for f in faults if f.action == "kill_imapworker" and f.done_at]
    out = []
    for fault in faults:
        if fault.done_at is None:
            continue
        t0, until = fault.done_at, fault.done_at + fault.seconds + SETTLE
        previous_ok, lowest, stale, recovered = None, len(healthy), 0, None
        for snapshot in snapshots:
            if snapshot.at < t0:
                continue
            died = [d for d in worker_deaths if t0 - 1 <= d <= min(snapshot.at, until)]
            since = max(died) - 1.0 if died else None
            connected = [a for a in healthy
                         if snapshot.states.get(a, ("", 0.0))[0] == "connected"]
            fresh = [a for a in connected if since is None or snapshot.states[a][1] >= since]
            all_ok = len(fresh) == len(healthy)
            if not all_ok and previous_ok is True and snapshot.at > until:
                break  # a dip that begins later is another fault's
            if not all_ok:
                lowest, stale = min(lowest, len(fresh)), max(stale, len(connected) - len(fresh))
                recovered = None
            elif recovered is None:
                recovered = snapshot.at - t0
            previous_ok = all_ok
        details = dict(fault.details)
        if isinstance(fault.handle, Storm):
            details["terminated"] = fault.handle.terminated
        out.append({"at_s": round(t0 - run.load_started, 1), "fault": fault.label,
                    "details": details,
                    "reconnected_s": round(recovered, 1) if recovered is not None else None,
                    "lowest_connected": lowest, "stale_connected": stale,
                    "met": recovered is not None and recovered <= bound})
    return out


def _states_timeline(run, faults, every: float = 5.0) -> list:
    """Every ``every`` s: s into the load, the healthy accounts by state, and how many of
    the connected ones said so after the last imapworker death before that moment."""
    deaths = sorted(run.monitor.deaths("imapworker") + [
        f.done_at for f in faults if f.action == "kill_imapworker" and f.done_at])
    out, next_at = [], 0.0
    for snapshot in run.states.snapshots:
        if snapshot.at < next_at:
            continue
        next_at = snapshot.at + every
        before = [d for d in deaths if d <= snapshot.at]
        since = before[-1] - 1.0 if before else 0.0
        states = [snapshot.states.get(a, ("missing", 0.0)) for a in run.users]
        out.append([round(snapshot.at - run.load_started, 1),
                    dict(Counter(state for state, _ in states)),
                    sum(1 for state, changed in states
                        if state == "connected" and changed >= since)])
    return out


def _last_worker_death(run) -> float | None:
    deaths = run.monitor.deaths("imapworker")
    return max(deaths) if deaths else None


def _fresh(run, state: tuple[str, float]) -> bool:
    """Connected, and said so by the imapworker running now (not one that died since)."""
    death = _last_worker_death(run)
    return state[0] == "connected" and (death is None or state[1] >= death - 1.0)


def _accounts_at_end(run) -> dict:
    """States in the last poll: the healthy accounts and the hung ones apart, and how many
    of the healthy ones the imapworker running at the end has connected itself."""
    if not run.states.snapshots:
        return {}
    states = run.states.snapshots[-1].states
    healthy = Counter(states.get(a, ("missing",))[0] for a in run.users)
    hung = Counter(state for a, (state, _) in states.items() if a not in run.users)
    fresh = sum(1 for a in run.users if _fresh(run, states.get(a, ("missing", 0.0))))
    api = run.poller.snapshots
    return {"healthy": dict(healthy), "connected_by_the_last_worker": fresh,
            "hung": dict(hung),
            "last_good_api_poll_s": round(api[-1].at - run.load_started, 1) if api else None,
            "api_polls_ok": len(api), "db_polls_failed": run.states.failures}


# -- logs ----------------------------------------------------------------------------------

LEVEL = re.compile(r"^\S+ \S+ (ERROR|CRITICAL|WARNING) (\S+): (.*)$")
EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(: |$)")  # "psycopg.OperationalError: ..." ends one


def _log_summary(log: Path, dovecot) -> dict:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    levels: Counter = Counter()
    exceptions: Counter = Counter()
    in_traceback = False
    for line in lines:
        match = LEVEL.match(line)
        if match:
            levels[f"{match.group(1)} {match.group(2)}"] += 1
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
        elif in_traceback and EXCEPTION.match(line):
            exceptions[line[:160]] += 1
            in_traceback = False
    dovecot_log = dovecot.read_log()
    return {"serve_log_lines": len(lines), "by_level_and_logger": dict(levels.most_common(12)),
            "tracebacks": sum(exceptions.values()),
            "exceptions": dict(exceptions.most_common(10)),
            "dovecot_inotify_warnings": dovecot_log.count("Inotify instance limit")}


# -- goals ---------------------------------------------------------------------------------


def _goals(report: dict, bound: float) -> list[dict]:
    requests, events = report["requests"], report["events"]
    processes, pools = report["processes"], report["pools"]
    drifts = {role: row["drift"] for role, row in processes["rss"].items()
              if row["drift"] is not None}
    over = {role: d for role, d in drifts.items() if d >= RSS_DRIFT}
    busy = {who: n for who, n in pools["busy_min_of_samples"].items() if n}
    probe = pools["probe"]
    probe_ok = (probe["statuses"] and all(s == "200" for s in probe["statuses"])
                and probe["slowest_s"] is not None and probe["slowest_s"] <= PROBE_SECONDS)
    health_busy = pools["health_pool_busy"]
    late = [f for f in report["faults"] if not f["met"]]
    unexpected = processes["unexpected_exits"]

    def goal(name, met, figure):
        return {"goal": name, "met": bool(met), "figure": figure}

    return [
        goal("0 x 500 (nor any 5xx but 503)", requests["5xx_not_503"] == 0,
             f"{requests['5xx_not_503']} of {requests['total']} requests"),
        goal("503 only inside a database storm", requests["503_outside_storm"] == 0,
             f"{requests['503_inside_storm']} inside, {requests['503_outside_storm']} outside"),
        goal("every request answered (no refused/cut connection, timeout, short body)",
             requests["unanswered"] == 0, f"{requests['unanswered']} unanswered"),
        goal("0 events lost (every APPEND arrives as messageNew, by Message-ID)",
             events["lost"] == 0 and events["appended"] > 0,
             f"{events['lost']} of {events['appended']} lost"),
        goal("duplicate deliveries <= in flight at the dispatcher kills",
             events["duplicates"] <= events["in_flight_at_kills"],
             f"{events['duplicates']} duplicates, at most {events['in_flight_at_kills']} "
             f"in flight"),
        goal(f"RSS growth under {RSS_DRIFT:.0%} for every process (after warm-up -> end)",
             drifts and not over,
             ", ".join(f"{r} {d:+.0%}" for r, d in sorted(drifts.items())) or "no figures"),
        goal("0 busy database connections at the end, web pool answers (20 concurrent "
             f"requests all 200 within {PROBE_SECONDS:g} s)",
             not busy and probe_ok and not health_busy,
             f"busy {busy or 0}; /health pool busy "
             f"{'n/a' if health_busy is None else health_busy}; probe "
             f"{dict(Counter(probe['statuses']))}, slowest {probe['slowest_s'] or 0:.2f} s"),
        goal(f"every account connected again within {bound:g} s of each fault", not late,
             ", ".join(f"{f['fault']} at {f['at_s']:g} s: "
                       f"{'never' if f['reconnected_s'] is None else f['reconnected_s']}"
                       for f in late) or "all in time"),
        goal("no process exits but the soak's kill -9", not unexpected,
             ", ".join(f"{e['role']} code {e['code']} at {e['at_s']:g} s"
                       for e in unexpected) or "none"),
    ]


# -- output --------------------------------------------------------------------------------


def show(report: dict) -> None:
    config, requests, events = report["config"], report["requests"], report["events"]
    print()
    print(f"soak: {config['minutes']:g} min, {config['mailboxes']} mailboxes, "
          f"{config['clients']} clients, an APPEND every {config['append_interval_s']:g} s; "
          f"drained in {report['drained_s']:g} s (bound {config['drain_bound_s']:g}); "
          f"logs {config['logs']}")
    print("\nfaults (s into the load)                          details -> all healthy "
          "accounts connected again after")
    for f in report["faults"]:
        again = "never" if f["reconnected_s"] is None else f"{f['reconnected_s']:g} s"
        print(f"  {f['at_s']:7.1f}  {f['fault']:<40} {_short(f['details']):<44} {again:>8}"
              f"  (lowest {f['lowest_connected']}, stale {f['stale_connected']})")
    gaps = [b - a for a, b in pairwise(sorted(f["at_s"] for f in report["faults"]))]
    if gaps and min(gaps) < report["recovery_bound_s"]:
        print(f"  (faults come as close as {min(gaps):.0f} s, less than the "
              f"{report['recovery_bound_s']:g} s a recovery may take: a fault's figure may "
              f"include the ones before it; a full-length run spaces them out)")
    print("  healthy accounts by state over the run (s: states, connected by the live "
          "imapworker):")
    for at, states, fresh in report["states_timeline"][::max(1, len(
            report["states_timeline"]) // 12)]:
        print(f"    {at:6.1f}  {states}  {fresh}")
    print(f"\nrequests: {requests['total']}")
    statuses = sorted({s for counts in requests["by_kind"].values() for s in counts})
    print(f"  {'kind':<14}" + "".join(f"{s:>12}" for s in statuses) + f"{'p50 ms':>9}"
          f"{'p99 ms':>9}")
    for kind, counts in requests["by_kind"].items():
        latency = requests["latency_ms"].get(kind, {})
        print(f"  {kind:<14}" + "".join(f"{counts.get(s, ''):>12}" for s in statuses)
              + f"{latency.get('p50', ''):>9}{latency.get('p99', ''):>9}")
    if requests["failures"]:
        print("  failures (status code: count, first seen s into the load):")
        for row in requests["failures"][:15]:
            print(f"    {row['what']:<40} {row['count']:>6}  {row['first_at_s']:>7.1f}")
    print(f"\nevents: {events['appended']} APPENDed ({events['append_failures']} APPENDs "
          f"failed), {events['deliveries']} webhooks received {events['by_event']}")
    print(f"  lost {events['lost']}: {events['lost_why']}")
    for line in events["lost_examples"]:
        print(f"    {line}")
    print(f"  APPEND -> webhook: {events['latency_s']}")
    for row in events["receiver_backlog"]:
        print(f"  receiver down at {row['down_at_s']:g} s: {row['appended_while_down']} APPENDs "
              f"meanwhile; the last arrived {row['last_arrived_after_back_s']} s after it was "
              f"back, {row['never_arrived']} never")
    print(f"  duplicates {events['duplicates']} ({events['duplicated_events']} events) "
          f"{events['duplicate_causes']}")
    for kill in events["dispatcher_kills"]:
        print(f"    dispatcher killed at {kill['at_s']:g} s: {kill['open_connections']} open "
              f"connections to the receiver, {kill['deliveries_marked_delivering']} deliveries "
              f"marked delivering")
    print(f"  accounts at the end: {report['accounts_at_end']}")
    print(f"\nsends: {report['sends']}")
    print("\nprocesses           pid start -> end       RSS MiB start   end  peak   drift")
    for role, row in report["processes"]["rss"].items():
        drift = "" if row["drift"] is None else f"{row['drift']:+.1%}"
        print(f"  {role:<18}{row['pid_start']!s:>7} -> {row['pid_end']!s:<7}"
              f"{'(restarted)' if row['restarted'] else '':<12}{row['rss_start_mib']!s:>6}"
              f"{row['rss_end_mib']!s:>6}{row['peak_mib']!s:>6}{drift:>9}")
    for e in report["processes"]["exits"]:
        print(f"  exit: {e['role']} pid {e['pid']} code {e['code']} at {e['at_s']:g} s"
              f"{' (our kill -9)' if e['ours'] else ''}")
    shutdown = report["shutdown"]
    print(f"  stop (SIGTERM to serve): "
          f"{'not within 25 s' if shutdown['stop_s'] is None else str(shutdown['stop_s']) + ' s'}"
          f"; children serve had to SIGKILL: {shutdown['killed_by_serve_at_stop'] or 'none'}")
    for pid, cmd in shutdown["orphans_before_stop"].items():
        print(f"  orphan of serve's group, no longer below serve: pid {pid} {cmd}")
    pools = report["pools"]
    print(f"\ndatabase sessions at the end by process: {pools['sessions_at_end']}")
    print(f"  busy (least of 5 samples): {pools['busy_min_of_samples']}")
    print(f"  /health {pools['health']['status']}: {pools['health']['body']}")
    probe = pools["probe"]
    print(f"  probe, 20 concurrent GET /v1/accounts: {dict(Counter(probe['statuses']))}, "
          f"slowest {probe['slowest_s'] or 0:.2f} s")
    logs = report["logs"]
    print(f"\nserve's log: {logs['serve_log_lines']} lines, {logs['tracebacks']} tracebacks; "
          f"{logs['by_level_and_logger']}")
    for line, n in logs["exceptions"].items():
        print(f"  {n:>5} x {line}")
    if logs["dovecot_inotify_warnings"]:
        print(f"  Dovecot: {logs['dovecot_inotify_warnings']} inotify-limit warnings (it polls "
              f"those sessions each second: latency, not loss)")
    print("\ngoals")
    for g in report["goals"]:
        print(f"  {'met    ' if g['met'] else 'NOT MET'}  {g['goal']}: {g['figure']}")


def _short(details: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in details.items())[:44]


def write_json(report: dict, path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, default=str)
    print(f"\nJSON report: {path}")
