"""``manage.py serve`` (what ``make run`` starts): a real daphne and workers, supervised.

These run the command as a subprocess on an embedded SQLite database, as a newcomer would.
Its output goes to a file (a pipe nobody reads fills up and blocks it), and every wait is for a
condition with a bound generous enough for a machine with a load of 15 or more: starting six
Python processes there takes most of a minute.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers.net import find_free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path, redis_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", REDIS_URL=redis_url,
               EMAILAPI_VAR_DIR=str(tmp_path / "var"), EMAILAPI_SECRET="serve-test-secret-0123456789")
    return env


def _get(port: int, path: str, timeout: float = 60.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


STARTUP = 180.0  # seconds for a serve command to answer /health, on a loaded machine


def _wait_for(port: int, process: subprocess.Popen, seconds: float = STARTUP) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.log.read_text()[-3000:]
        try:
            if _get(port, "/health", timeout=10)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server did not come up: {process.log.read_text()[-3000:]}")


def _serve(env: dict, log: Path, *arguments: str) -> subprocess.Popen:
    """``manage.py serve`` with its output (the supervisor's lines and its children's) in
    ``log``, also reachable as ``process.log``."""
    with log.open("ab") as output:
        process = subprocess.Popen([sys.executable, "manage.py", "serve", *arguments], cwd=ROOT,
                                   env=env, stdout=output, stderr=output,
                                   start_new_session=True)
    process.log = log
    return process


def _migrate(env: dict, migrated: Path) -> None:
    """The test's database (``env``'s), a copy of the migrated one."""
    target = Path(env["DATABASE_URL"].removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):  # WAL mode: a file beside it may hold pages
        if Path(f"{migrated}{suffix}").exists():
            shutil.copy(f"{migrated}{suffix}", f"{target}{suffix}")


def _stopped(process: subprocess.Popen) -> int:
    """SIGINT (Ctrl-C), then wait for the whole group to stop; its exit code."""
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=120)


@pytest.fixture
def served(tmp_path, settings, migrated):
    env = _env(tmp_path, settings.REDIS_URL)
    _migrate(env, migrated)
    port = find_free_port()
    process = _serve(env, tmp_path / "serve.log", "--port", str(port))
    try:
        _wait_for(port, process)
        yield port, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_it_serves_health_openapi_and_docs_then_stops_on_ctrl_c(served):
    port, process = served
    status, body = _get(port, "/health")
    assert status == 200
    assert json.loads(body)["database"]["ok"] is True
    status, body = _get(port, "/v1/openapi.json")
    assert status == 200
    assert "/v1/account" in json.loads(body)["paths"]
    status, body = _get(port, "/docs")
    assert status == 200
    assert b"swagger" in body.lower()
    status, body = _get(port, "/v1/accounts")
    assert status == 401
    assert json.loads(body)["code"] == "Unauthorized"

    assert _stopped(process) == 0
    assert "[serve] stopped" in process.log.read_text()


def test_a_chunked_oversized_body_is_cut_off_with_413(served):
    port, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    chunk = b"x" * (1024 * 1024)

    def body():
        for _ in range(10):
            yield chunk

    try:
        conn.request("POST", "/v1/account", body=body(), encode_chunked=True,
                     headers={"Content-Type": "application/json",
                              "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        payload = json.loads(response.read())
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail("the server dropped the connection instead of answering 413")
    finally:
        conn.close()
    assert response.status == 413
    assert payload["code"] == "PayloadTooLarge"


def test_a_dead_child_is_reported_and_restarted(served):
    port, process = served
    children = subprocess.run(["pgrep", "-P", str(process.pid), "-f", "emailapi.asgi"],
                              capture_output=True, text=True).stdout.split()
    assert children, "daphne child not found"
    before = len(process.log.read_bytes())
    os.kill(int(children[0]), signal.SIGKILL)
    # The supervisor restarts it after a growing delay: a second at first.
    deadline = time.monotonic() + 120

    def restarted() -> bool:
        seen = process.log.read_bytes()[before:]
        _, found, after = seen.partition(b"exited with code")
        return bool(found) and b"started web" in after

    while time.monotonic() < deadline and not restarted():
        time.sleep(0.2)
    seen = process.log.read_bytes()[before:]
    # "web" alone, or "web1"... when serve starts one per core (its default).
    assert re.search(rb"web\d* \(pid %d\) exited with code" % int(children[0]), seen), seen
    assert restarted(), seen
    _wait_for(port, process)


JOB_SECONDS = 8.0  # long enough to be running through both signals on a loaded machine


def test_ctrl_c_twice_lets_the_job_in_progress_finish(served, settings):
    """A terminal's Ctrl-C reaches every process of the group, then the supervisor sends each
    child SIGTERM: rq took a second signal more than a second after the first as a cold shut
    down and raised out of the job (a send cut in half). A person pressing Ctrl-C again does
    the same: the job still finishes, and serve exits 0."""
    import redis
    from rq import Queue
    from rq.job import JobStatus

    port, process = served
    connection = redis.Redis.from_url(settings.REDIS_URL)
    marker = f"serve-test-job-running-{os.getpid()}"
    connection.delete(marker)
    job = Queue("default", connection=connection).enqueue(
        "tests.emailapi.serve_jobs.sleep_marked", settings.REDIS_URL, marker, JOB_SECONDS)
    deadline = time.monotonic() + STARTUP
    while not connection.exists(marker):  # the job's body is running (a send would be)
        assert time.monotonic() < deadline, process.log.read_text()[-3000:]
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    # The second Ctrl-C must come after rq's one-second allowance for a duplicate signal.
    second = time.monotonic() + 1.5
    while time.monotonic() < second:
        time.sleep(0.05)
    assert process.poll() is None, "serve stopped before the job could finish"
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=120) == 0
    log = process.log.read_text()
    assert job.get_status(refresh=True) == JobStatus.FINISHED, log[-3000:]
    assert "cold shut down" not in log
    assert "did not stop" not in log  # nothing was left for the supervisor to kill


def test_it_refuses_to_start_without_redis_in_one_line(tmp_path):
    env = _env(tmp_path, f"redis://127.0.0.1:{find_free_port()}/0")
    result = subprocess.run([sys.executable, "manage.py", "serve", "--port",
                             str(find_free_port())], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()
             and not line.startswith("warning:")]
    assert len(lines) == 1, result.stderr
    assert "Redis is not reachable" in lines[0]
    assert "Traceback" not in result.stderr


def test_several_web_processes_share_one_port(tmp_path, settings, migrated):
    env = _env(tmp_path, settings.REDIS_URL)
    _migrate(env, migrated)
    port = find_free_port()
    process = _serve(env, tmp_path / "serve.log", "--port", str(port), "--no-workers",
                     "--web-processes", "2")
    try:
        _wait_for(port, process)
        assert all(_get(port, "/health")[0] == 200 for _ in range(10))
        assert _stopped(process) == 0
        log = process.log.read_text()
        assert "started web1" in log
        assert "started web2" in log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.parametrize("dispatchers, names", [
    (1, ["webhookdispatcher"]),
    (2, ["webhookdispatcher", "webhookdispatcher2"]),
])
def test_serve_starts_the_webhook_dispatchers_it_is_asked_for(dispatchers, names):
    """Two dispatchers deliver about 2,100 webhooks a second on two cores, one about 1,500:
    ``EMAILAPI_WEBHOOK_DISPATCHERS`` / ``--webhook-dispatchers`` sets how many serve runs."""
    from emailapi.management.commands.serve import worker_children

    children = worker_children(sys.executable, dispatchers)
    started = [child for child in children if "webhookdispatcher" in child.argv]
    assert [child.name for child in started] == names
    assert {child.name for child in children} >= {"imapworker", "rqworker", "sendscheduler"}


def test_exports_run_on_an_rq_worker_of_their_own():
    """An export may run for hours and a worker runs one job at a time: sends and webhooks
    must not wait behind it."""
    from emailapi.management.commands.serve import worker_children

    workers = {child.name: child.argv for child in worker_children(sys.executable)
               if "rqworker" in child.argv}
    assert workers["rqworker-export"][-1] == "export"
    assert "export" not in workers["rqworker"]
    assert "send" in workers["rqworker"]
