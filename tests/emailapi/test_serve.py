"""``manage.py serve`` (what ``make run`` starts): a real daphne and workers, supervised.

These run the command as a subprocess on an embedded SQLite database, as a newcomer would.
"""

from __future__ import annotations

import http.client
import json
import os
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


def _get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _wait_for(port: int, process: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            if _get(port, "/health", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not come up")


@pytest.fixture
def served(tmp_path, settings):
    env = _env(tmp_path, settings.REDIS_URL)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                   check=True, timeout=120)
    port = find_free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
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
    assert status == 200 and json.loads(body)["database"]["ok"] is True
    status, body = _get(port, "/v1/openapi.json")
    assert status == 200 and "/v1/account" in json.loads(body)["paths"]
    status, body = _get(port, "/docs")
    assert status == 200 and b"swagger" in body.lower()
    status, body = _get(port, "/v1/accounts")
    assert status == 401 and json.loads(body)["code"] == "Unauthorized"

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert b"[serve] stopped" in stderr


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
    os.set_blocking(process.stderr.fileno(), False)
    children = subprocess.run(["pgrep", "-P", str(process.pid), "-f", "emailapi.asgi"],
                              capture_output=True, text=True).stdout.split()
    assert children, "daphne child not found"
    os.kill(int(children[0]), signal.SIGKILL)
    deadline, seen = time.monotonic() + 20, b""

    def restarted() -> bool:
        _, found, after = seen.partition(b"exited with code")
        return bool(found) and b"started web" in after

    while time.monotonic() < deadline and not restarted():
        time.sleep(0.2)
        seen += process.stderr.read() or b""
    assert f"web (pid {children[0]}) exited with code".encode() in seen
    assert restarted(), seen
    _wait_for(port, process)


def test_it_refuses_to_start_without_redis_in_one_line(tmp_path):
    env = _env(tmp_path, f"redis://127.0.0.1:{find_free_port()}/0")
    result = subprocess.run([sys.executable, "manage.py", "serve", "--port",
                             str(find_free_port())], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()
             and not line.startswith("warning:")]
    assert len(lines) == 1, result.stderr
    assert "Redis is not reachable" in lines[0] and "Traceback" not in result.stderr


def test_several_web_processes_share_one_port(tmp_path, settings):
    env = _env(tmp_path, settings.REDIS_URL)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                   check=True, timeout=120)
    port = find_free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--no-workers",
         "--web-processes", "2"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for(port, process)
        assert all(_get(port, "/health")[0] == 200 for _ in range(10))
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "started web1" in err.decode() and "started web2" in err.decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
