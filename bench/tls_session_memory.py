"""Where an idling STARTTLS session's memory goes: N sessions opened from one process with
the engine's own client (``mailboxes.imap.client.connect``, then EXAMINE INBOX and IDLE as the
worker's ``start_idle`` does), for variants of the TLS side (issue 19: 25 KB per account).

Each variant runs in a fresh child process (two malloc arenas and ``malloc_trim`` after the
connects, as ``imapworker`` does: ``mailboxes.worker.memory``), which reports per session:

- ``rss``: its resident size's growth / N, what the worker's figure counts;
- ``heap``: glibc's bytes in use (``mallinfo2``: ``uordblks`` + ``hblkhd``) growth / N: the
  live C and Python objects. ``rss - heap`` is the heap's slack (freed holes that stay
  resident, page rounding);
- ``python``: bytes Python allocated and still holds (``tracemalloc``), only with
  ``--trace`` (it adds its own overhead to ``rss``), with the lines that hold most.
  ``heap - python`` is then OpenSSL's share, mostly.

Variants (``--variants``, default all):

- ``plain``: no TLS (the login goes in the clear; Dovecot here allows it): the Python side and
  a socket;
- ``engine``: the engine's context as a bench account uses it (``tls_verify: false``);
- ``resume``: the same, every connection offering the TLS session of one opened before
  (resumption; the engine does not resume: see "TLS session resumption: tried and left" in
  ``bench/RESULTS.md``);
- ``resume-fresh``: the same, each connection that did not resume giving its own session to the
  next ones (a kept session stays fresh as tickets expire and servers rotate keys);
- ``verify``: certificate and host name verified against the instance's own certificate;
- ``tls12``: TLS 1.2 at most (one session, no TLS 1.3 tickets);
- ``noticket``: ``OP_NO_TICKET``;
- ``tls12-chacha``: TLS 1.2 with ChaCha20-Poly1305 rather than AES-GCM;
- ``context-each``: the engine's unverified context made anew per connection rather than
  one shared;
- ``free-buffers``: after the connects, OpenSSL's ``SSL_free_buffers`` on each idle session
  (CPython sets ``SSL_MODE_RELEASE_BUFFERS`` already; this shows whether any are left).

Each variant also reports this process's CPU per connect (TCP, STARTTLS, login, EXAMINE,
IDLE) and how many connections resumed a TLS session (the bench Dovecot has two login
processes, each with its own ticket key: about half do).

Dovecot is the bench's (``bench/dovecot-scale.conf``, imap-hibernate): 50 sessions per user
(its per-user-and-address limit is 100).

    .venv/bin/python bench/tls_session_memory.py --sessions 2000
    .venv/bin/python bench/tls_session_memory.py --sessions 1000 --variants engine --trace
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import _engine  # noqa: E402

VARIANTS = ("plain", "engine", "resume", "resume-fresh", "verify", "tls12", "noticket", "tls12-chacha",
            "context-each", "free-buffers")
PER_USER = 50


def heap_in_use() -> int:
    """Bytes glibc's malloc has handed out and not had back (0 where there is no mallinfo2)."""
    info = _engine.mallinfo2()
    return info.get("uordblks", 0) + info.get("hblkhd", 0)


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise LookupError("VmRSS")


# -- the child: one variant ------------------------------------------------------------------


def make_context(variant: str, cert_path: str) -> ssl.SSLContext | None:
    """The context a variant's connections use (None: the engine's own)."""
    from mailboxes.imap import client as imap

    if variant in ("plain", "engine", "resume", "resume-fresh", "free-buffers", "context-each"):
        return None
    if variant == "verify":
        context = ssl.create_default_context(cafile=cert_path)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context
    # The engine's unverified context (no CA store) built anew (``_tls_context`` uncached),
    # then the variant's one difference.
    fresh = imap._tls_context.__wrapped__(False)
    if variant == "tls12":
        fresh.maximum_version = ssl.TLSVersion.TLSv1_2
        fresh.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
    elif variant == "tls12-chacha":
        fresh.maximum_version = ssl.TLSVersion.TLSv1_2
        fresh.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305")
    elif variant == "noticket":
        fresh.options |= ssl.OP_NO_TICKET
    return fresh


class _Resuming:
    """Where imaplib's STARTTLS wraps the socket: the engine's context, offering ``session``."""

    def __init__(self, context: ssl.SSLContext):
        self.context = context
        self.session: ssl.SSLSession | None = None

    def wrap_socket(self, sock, server_hostname):
        return self.context.wrap_socket(sock, server_hostname=server_hostname,
                                        session=self.session)


def free_buffers(client) -> None:
    """``SSL_free_buffers`` on the session's ``SSL`` (the pointer after the object header
    and the socket's weak reference in CPython's ``PySSLSocket``)."""
    libssl = ctypes.CDLL("libssl.so.3")
    libssl.SSL_free_buffers.argtypes = [ctypes.c_void_p]
    sslobj = client._imap.sock._sslobj
    pointer = ctypes.c_void_p.from_address(id(sslobj) + 3 * ctypes.sizeof(ctypes.c_void_p))
    libssl.SSL_free_buffers(pointer.value)


def child(spec_path: str, variant: str, threads: int, trace: bool) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emailapi.settings")
    from bench.idle_accounts import raise_fd_limit
    from mailboxes.imap import client as imap
    from mailboxes.imap.session import start_idle
    from mailboxes.worker import memory

    del django
    memory.limit_arenas()
    raise_fd_limit()
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    context = make_context(variant, spec["cert_path"])
    if context is not None:
        imap._tls_context = lambda verify: context  # noqa: ARG005 - the variant's, always
    elif variant == "context-each":
        build = imap._tls_context.__wrapped__  # the engine's, uncached
        imap._tls_context = lambda verify: build(False)  # noqa: ARG005
    elif variant.startswith("resume"):
        resuming = _Resuming(imap._tls_context(False))
        imap._tls_context = lambda verify: resuming  # noqa: ARG005
    if variant == "plain":  # the capability check is the only way to STARTTLS
        imap.imapclient.IMAPClient.has_capability = lambda self, name: name != "STARTTLS"  # noqa: ARG005
    pool = ThreadPoolExecutor(max_workers=threads)
    list(pool.map(lambda x: x, range(threads * 4)))  # the threads exist before 'before'

    def open_one(user):
        settings = imap.ImapSettings(host=spec["host"], port=spec["port"], secure=False,
                                     user=user[0], password=user[1], tls_verify=False,
                                     timeout=120, allow_private=True)
        client = imap.connect(settings)
        sock = client._imap.sock
        if variant == "resume-fresh" and not sock.session_reused:
            resuming.session = sock.session  # read after the login: TLS 1.3 tickets are in
        client.select_folder("INBOX", readonly=True)
        start_idle(client)
        return client

    imap.tls_context(False)  # the shared context exists before 'before'
    if variant.startswith("resume"):  # the session the first measured connections offer
        opener = open_one(spec["users"][0])
        resuming.session = opener._imap.sock.session
    gc.collect()
    memory.trim()
    if trace:
        import tracemalloc
        tracemalloc.start(1)
        first = tracemalloc.take_snapshot()
    before = (rss_kib(), heap_in_use())
    started, cpu = time.perf_counter(), time.process_time()
    clients = list(pool.map(open_one, spec["users"]))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if variant == "free-buffers":
        for client in clients:
            free_buffers(client)
    versions = sorted({getattr(c._imap.sock, "version", lambda: "none")() for c in clients})
    ciphers = sorted({(getattr(c._imap.sock, "cipher", lambda: None)() or ("none",))[0]
                      for c in clients})
    resumed = sum(bool(getattr(c._imap.sock, "session_reused", False)) for c in clients)
    gc.collect()
    memory.trim()
    time.sleep(1.0)
    after = (rss_kib(), heap_in_use())
    n = len(clients)
    result = {"variant": variant, "n": n, "connect_s": round(elapsed, 2),
              "cpu_ms_per_connect": round(cpu * 1000 / n, 2),
              "rss_per_session": (after[0] - before[0]) * 1024 / n,
              "heap_per_session": (after[1] - before[1]) / n,
              "tls": versions, "cipher": ciphers, "resumed": resumed}
    if trace:
        last = tracemalloc.take_snapshot()
        stats = last.compare_to(first, "lineno")
        result["python_per_session"] = sum(s.size_diff for s in stats) / n
        result["python_top"] = [
            ("/".join(s.traceback[0].filename.split("/")[-2:]) + f":{s.traceback[0].lineno}",
             round(s.size_diff / n), round(s.count_diff / n, 2))
            for s in stats[:25]]
    print(json.dumps(result), flush=True)
    os._exit(0)  # no LOGOUTs: only the memory figure was wanted


# -- the parent ------------------------------------------------------------------------------


def run_variant(spec_path: str, variant: str, threads: int, trace: bool) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "emailapi.settings"}
    argv = [sys.executable, __file__, "--child", spec_path, "--variant", variant,
            "--threads", str(threads)] + (["--trace"] if trace else [])
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--trace", action="store_true", help="tracemalloc in the children")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.variant, args.threads, args.trace)
        return

    from bench.worker_scale import dovecot_config, raise_limits, wait_dovecot_settled
    from tests.servers.dovecot import Dovecot

    raise_limits()
    n = args.sessions
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    print(f"load {os.getloadavg()}", flush=True)
    results = []
    with Dovecot(extra_config=dovecot_config(n, "5s"), startup_timeout=60) as server, \
            tempfile.TemporaryDirectory(prefix="bench-tls-") as workdir:
        users = [server.add_user() for _ in range(-(-n // PER_USER))]
        for user in users:
            # Its mailbox made by one session: fifty first sessions at once trip a Dovecot
            # panic on the new index's lock.
            client = user.imap_client(starttls=True)
            client.select_folder("INBOX", readonly=True)
            client.logout()
        spec_path = os.path.join(workdir, "spec.json")
        with open(spec_path, "w", encoding="utf-8") as fh:
            json.dump({"host": server.host, "port": server.imap_port,
                       "cert_path": server.cert_path,
                       "users": [[u.username, u.password] for u in users
                                 for _ in range(PER_USER)][:n]}, fh)
        for _ in range(args.repeat):
            for variant in variants:
                wait_dovecot_settled(server, n)
                try:
                    result = run_variant(spec_path, variant, args.threads, args.trace)
                except RuntimeError:
                    problems = [line for line in server.read_log().splitlines()
                                if "Error" in line or "Fatal" in line or "Panic" in line]
                    print("Dovecot's errors:\n" + "\n".join(problems[:10]), flush=True)
                    raise
                results.append(result)
                print(f"{variant:14} rss {result['rss_per_session'] / 1024:6.2f} KiB  heap "
                      f"{result['heap_per_session'] / 1024:6.2f} KiB"
                      + (f"  python {result['python_per_session'] / 1024:6.2f} KiB"
                         if args.trace else "")
                      + f"  per session ({result['n']}; {result['tls']} {result['cipher']}; "
                      f"{result['resumed']} resumed; connects {result['connect_s']} s, "
                      f"{result['cpu_ms_per_connect']} ms of CPU each; "
                      f"load {os.getloadavg()[0]:.1f})",
                      flush=True)
                for line in result.get("python_top", []):
                    print(f"    {line[0]:50} {line[1]:7d} B  {line[2]:6.2f} blocks")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
