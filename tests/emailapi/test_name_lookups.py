"""Host name lookups (``emailapi.lib.names``, used by every connection a tenant chooses):
bounded by the caller's timeout, shared while in flight, remembered for ``TTL`` seconds.

The bound is proven against a real name server that never answers (a UDP socket on a
loopback address, named in a ``resolv.conf`` bind-mounted for one process), where glibc
alone waits 10 s; the rest replaces ``socket.getaddrinfo`` with one that counts the calls
(or holds them) around the real resolver, as the rebinding tests do.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from emailapi.lib import metrics, names, netguard
from tests.base import wait_for
from webhooks import transport

ROOT = Path(__file__).resolve().parents[2]
SLOW = "slow.test"


@pytest.fixture
def resolver(monkeypatch):
    """``socket.getaddrinfo`` counting its calls by name; ``slow.test`` waits for ``release``
    and then answers 192.0.2.7, a name under ``.invalid`` does not resolve (without asking a
    name server), any other is the real resolver's."""
    real = socket.getaddrinfo
    calls: list[str] = []
    release = threading.Event()

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        if host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host != SLOW:
            return real(host, port, *args, **kwargs)
        release.wait(30)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield type("Resolver", (), {"calls": calls, "release": release})
    release.set()


def test_an_answer_is_reused_for_its_time(resolver, monkeypatch):
    first = netguard.lookup("localhost", 443)
    assert netguard.lookup("localhost", 443) == first
    assert resolver.calls == ["localhost"]
    monkeypatch.setattr(names, "TTL", 0.0)
    names.forget()
    netguard.lookup("localhost", 443)
    netguard.lookup("localhost", 443)
    assert resolver.calls == ["localhost"] * 3


def test_a_name_that_did_not_resolve_is_asked_again(resolver):
    for _ in range(2):
        with pytest.raises(netguard.Unresolvable, match="Cannot resolve nowhere.invalid"):
            netguard.lookup("nowhere.invalid", 443)
    assert resolver.calls == ["nowhere.invalid"] * 2


def test_callers_share_the_lookup_in_flight(resolver):
    answers = []

    def look() -> None:
        answers.append(netguard.lookup(SLOW, 443, timeout=30))

    threads = [threading.Thread(target=look) for _ in range(5)]
    for thread in threads:
        thread.start()
    wait_for(lambda: resolver.calls)
    resolver.release.set()
    for thread in threads:
        thread.join(30)
    assert answers == [[(socket.AF_INET, ("192.0.2.7", 443))]] * 5
    assert resolver.calls == [SLOW]


def test_a_lookup_waits_no_longer_than_its_timeout(resolver):
    started = time.monotonic()
    with pytest.raises(netguard.Unresolvable) as refused:
        netguard.lookup(SLOW, 443, timeout=0.3)
    assert time.monotonic() - started < 5
    assert str(refused.value) == ("Cannot resolve slow.test: no answer from the name server "
                                  "within 0.3 s")
    # The lookup went on; its answer, when it comes, serves the next caller at once.
    resolver.release.set()
    wait_for(lambda: _resolves_now(SLOW))
    assert resolver.calls == [SLOW]


def _resolves_now(host: str) -> bool:
    try:
        return bool(netguard.lookup(host, 443, timeout=0))
    except netguard.Unresolvable:
        return False


def test_connections_and_webhook_requests_keep_to_their_timeout(resolver):
    started = time.monotonic()
    with pytest.raises(netguard.Unresolvable, match="within 0.4 s"):
        netguard.connect(SLOW, 993, 0.4, allow_private=True)
    outcome = transport.post(f"http://{SLOW}/hook", b"{}", {}, timeout=1, allow_private=True)
    assert outcome.status_code is None
    assert outcome.error == "Cannot resolve slow.test: no answer from the name server within 1 s"
    assert time.monotonic() - started < 8


FORKED_LOOKUP = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from emailapi.lib import names, netguard
    netguard.lookup("localhost", 443)  # the parent's pool has a thread, now idle
    names.forget()
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the lookup is answered
        code = 1
        try:
            code = 0 if netguard.lookup("localhost", 443, timeout=10) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
""")


def test_a_forked_child_looks_names_up_on_its_own_threads():
    """rq forks its jobs: the parent's resolver threads do not exist in the child. Forked from
    a process of its own, as rq's worker is, not from this test process, whose other threads
    (earlier tests' servers and pools) may hold a lock at the moment of the fork."""
    done = subprocess.run([sys.executable, "-c", FORKED_LOOKUP, str(Path(__file__).parents[2])],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


SILENT_LOOKUP = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from emailapi.lib import netguard
    from webhooks import transport
    timeout = float(sys.argv[2])
    started = time.monotonic()
    try:
        netguard.lookup("never.example.com", 443, timeout=timeout)
        error = None
    except netguard.Unresolvable as exc:
        error = str(exc)
    looked_up = time.monotonic()
    # A webhook request to another name the server never answers for, as the dispatcher
    # sends one.
    outcome = transport.post("https://hooks.example.net/in", b"{}", {}, timeout=timeout,
                             allow_private=False)
    print(json.dumps({"seconds": looked_up - started, "error": error,
                      "webhook_seconds": time.monotonic() - looked_up,
                      "webhook_error": outcome.error}))
""")


@pytest.fixture
def silent_name_server():
    """A loopback address where a UDP socket takes every query and answers none."""
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        server.bind((address, 53))
    except OSError as exc:
        server.close()
        pytest.skip(f"cannot take port 53 on {address}: {exc}")
    yield address
    server.close()


def test_a_name_server_that_never_answers_costs_lookups_and_webhooks_only_the_timeout(
        silent_name_server, tmp_path):
    if not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs root and unshare, to give one process its own resolv.conf")
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver {silent_name_server}\n")
    script = tmp_path / "lookup.py"
    script.write_text(SILENT_LOOKUP)
    shell = (f"mount --bind {conf} /etc/resolv.conf && "
             f"exec {sys.executable} {script} {ROOT} 1.5")
    started = time.monotonic()
    done = subprocess.run(["unshare", "--mount", "sh", "-c", shell], capture_output=True,
                          text=True, timeout=120, check=False)
    lasted = time.monotonic() - started
    if done.returncode and "mount" in done.stderr:
        pytest.skip(f"no mount namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["error"] == ("Cannot resolve never.example.com: no answer from the name "
                               "server within 1.5 s")
    # glibc alone waits 5 s for each of its 2 attempts; and the process may exit while the
    # lookup still waits (it cannot stop it).
    assert result["seconds"] < 6
    assert result["webhook_error"] == ("Cannot resolve hooks.example.net: no answer from the "
                                       "name server within 1.5 s")
    assert result["webhook_seconds"] < 6
    assert lasted < 12


def test_a_process_that_cannot_start_a_thread_still_looks_names_up(resolver, monkeypatch):
    def refuse(self):
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patched:
        patched.setattr(names.threading.Thread, "start", refuse)
        assert netguard.lookup("localhost", 443)
    names.forget()
    assert netguard.lookup("localhost", 443, timeout=10)  # nothing left waiting on the name
    assert resolver.calls == ["localhost", "localhost"]


def lookups(result: str) -> float:
    return REGISTRY.get_sample_value("emailapi_name_lookups_total", {"result": result}) or 0.0


def test_each_lookup_is_counted_by_its_result(resolver):
    assert names.observe is metrics.name_lookup
    before = {result: lookups(result)
              for result in ("answered", "remembered", "failed", "timed_out")}
    netguard.lookup("localhost", 443)
    netguard.lookup("localhost", 443)
    with pytest.raises(netguard.Unresolvable):
        netguard.lookup("nowhere.invalid", 443)
    with pytest.raises(netguard.Unresolvable):
        netguard.lookup(SLOW, 443, timeout=0.1)
    assert {result: lookups(result) - count for result, count in before.items()} == {
        "answered": 1, "remembered": 1, "failed": 1, "timed_out": 1}
