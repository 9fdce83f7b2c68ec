"""``/metrics`` under ``manage.py serve``: the workers' values reach the web process's scrape
(prometheus_client's multiprocess mode), and a worker killed and restarted is not counted
twice in the live gauges."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.emailapi.test_serve import ROOT, _env, _migrate, _serve, _wait_for
from tests.servers.net import find_free_port

TOKEN = "operator-scrape-token-for-serve-0123"
TIMEOUT = 240.0  # six Python processes starting on a loaded machine, then a first sync


def _request(port: int, method: str, path: str, token: str, body: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Authorization": f"Bearer {token}",
                              "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _samples(port: int) -> dict[str, float]:
    status, body = _request(port, "GET", "/metrics", TOKEN)
    assert status == 200, body[:300]
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def _until(port: int, predicate, process, what: str) -> dict[str, float]:
    deadline = time.monotonic() + TIMEOUT
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, process.log.read_text()[-3000:]
        seen = _samples(port)
        if predicate(seen):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"{what}: {seen}")


def _child_pid(process, name: str) -> int:
    found = [line for line in process.log.read_text().splitlines()
             if f"started {name} (pid " in line]
    assert found, process.log.read_text()[-3000:]
    return int(found[-1].rsplit("(pid ", 1)[1].rstrip(")"))


def _labelled(values_port: int, name: str, **labels: str) -> float:
    status, body = _request(values_port, "GET", "/metrics", TOKEN)
    assert status == 200, body[:300]
    return sum(sample.value for family in text_string_to_metric_families(body.decode())
               for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v
                                              for k, v in labels.items()))


def test_workers_metrics_reach_the_scrape_and_a_dead_worker_is_not_counted(
        tmp_path, settings, smtp_user, smtp_server, migrated):
    mail_user = smtp_user
    env = {**_env(tmp_path, settings.REDIS_URL), "EMAILAPI_METRICS_TOKEN": TOKEN,
           "EMAILAPI_CLAIM_INTERVAL": "1", "EMAILAPI_LEASE_TTL": "5"}
    _migrate(env, migrated)
    created = subprocess.run([sys.executable, "manage.py", "create_tenant", "Metrics Inc"],
                             cwd=ROOT, env=env, capture_output=True, text=True, check=True,
                             timeout=300)
    api_token = created.stdout.strip().splitlines()[-1]
    from tests.servers import seed
    seed.seed_mailbox(mail_user, messages=seed.build_messages()[:3])
    port = find_free_port()
    process = _serve(env, tmp_path / "serve.log", "--port", str(port))
    try:
        _wait_for(port, process)
        imap = {**mail_user.imap_settings(secure=False), "tls": {"rejectUnauthorized": False}}
        smtp = {**smtp_server.smtp_settings(mail_user.username, mail_user.password),
                "tls": {"rejectUnauthorized": False}}
        status, body = _request(port, "POST", "/v1/account", api_token,
                                {"account": "box", "imap": imap, "smtp": smtp})
        assert status == 200, body
        # Values only the imapworker writes (connections, indexing) and only the
        # webhookdispatcher writes (published events), scraped from the web process.
        first = _until(port, lambda v: v.get("emailapi_imap_connections", 0) == 1
                       and v.get("emailapi_messages_indexed_total", 0) >= 3
                       and v.get("emailapi_events_published_total", 0) >= 1,
                       process, "the workers' metrics never showed")
        assert first["emailapi_sync_pass_duration_seconds_count"] >= 1
        assert first["emailapi_imap_connects_total"] >= 1

        # A send's events are recorded by the rq worker's job: they reach the scrape too.
        status, body = _request(port, "POST", "/v1/account/box/submit", api_token, {
            "from": {"address": mail_user.username}, "to": [{"address": "bob@example.test"}],
            "subject": "Counted", "text": "Hello", "copy": False})
        assert status == 200, body
        _until(port, lambda v: _labelled(port, "emailapi_events_recorded_total",
                                         event="messageSent") >= 1,
               process, "the send's messageSent was never counted")

        worker = _child_pid(process, "imapworker")
        os.kill(worker, signal.SIGKILL)
        _until(port, lambda v: v.get("emailapi_imap_connects_total", 0)
               >= first["emailapi_imap_connects_total"] + 1, process,
               "the restarted worker never connected")
        again = _until(port, lambda v: v.get("emailapi_imap_connections", 0) >= 1, process,
                       "no connection after the restart")
        assert again["emailapi_imap_connections"] == 1  # the dead worker's gauge is gone
        # Its counters stay in the sums: totals never go back.
        assert again["emailapi_messages_indexed_total"] >= first["emailapi_messages_indexed_total"]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
