"""A private, throwaway Dovecot IMAP server for tests.

Why: the API talks to "any IMAP mailbox", so its tests need a real,
standards-complete IMAP server (CONDSTORE/QRESYNC, IDLE, MOVE, SPECIAL-USE,
UIDPLUS, STARTTLS and implicit TLS) rather than a mock.  Debian's
dovecot-imapd is started in the foreground from ``dovecot.conf.template``
with every path inside one ``tempfile.mkdtemp()`` directory and on free
127.0.0.1 ports, so any number of instances (pytest-xdist workers) can run
side by side and nothing outside the temp dir is touched.

Users live in one passwd-file *per user* (``passwd.d/<username>``).  Dovecot
2.3 re-reads a passwd-file when its mtime/size changes, but checks at most
once per second of its event-loop clock (``last_sync_time == ioloop_time``
in db-passwd-file.c), so with a single shared file a user added right after
another login would be "unknown" for up to a second.  With ``%u`` in the
path, a new user means a new file that has never been looked up, so it is
usable immediately with no reload. But Dovecot's auth process keeps every passwd-file it
has read open, so past about 20,000 users it runs out of descriptors ("Too many open
files"): ``single_passwd_file=True`` (the scale benches) keeps them all in one file, and
``wait_users_loaded`` waits out the second in which the last was added.

No Django imports here: this module must work for any test.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import string
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imapclient import IMAPClient

from .net import LOOPBACK, find_free_port, wait_for_greeting
from .tls import client_context, write_self_signed_cert

__all__ = ["Dovecot", "MailUser", "DovecotError", "find_free_port"]

TEMPLATE_PATH = os.path.join(os.path.dirname(__file__), "dovecot.conf.template")
MAIL_SYSTEM_USER = "dovecot"
# Unix socket paths must stay below ~107 bytes; a long $TMPDIR would break them.
MAX_ROOT_LEN = 60
FORBIDDEN_IN_FIELDS = (":", "\n", "\r", "\0")


class DovecotError(RuntimeError):
    """Dovecot failed to start; the message carries its log."""


@dataclass
class MailUser:
    """A mailbox on a test Dovecot, with ready-made client settings."""

    username: str
    password: str
    host: str
    imap_port: int
    imaps_port: int
    cert_path: str | None = None
    email: str = field(default="")

    def __post_init__(self) -> None:
        if not self.email:
            self.email = self.username

    def imap_client(self, ssl: bool = False, starttls: bool = False,
                    timeout: float = 10) -> IMAPClient:
        """A logged-in IMAPClient (implicit TLS if *ssl*, else plain or STARTTLS).

        TLS connections verify the server against the instance's own
        certificate, so this also proves the certificate is sane.
        """
        ctx = client_context(self.cert_path)
        port = self.imaps_port if ssl else self.imap_port
        client = IMAPClient(self.host, port=port, ssl=ssl, ssl_context=ctx, timeout=timeout)
        try:
            if starttls and not ssl:
                client.starttls(ctx)
            client.login(self.username, self.password)
        except Exception:
            client.shutdown()
            raise
        return client

    def imap_settings(self, secure: bool = False) -> dict[str, Any]:
        """The API's ``imap`` object for this user (implicit TLS if *secure*)."""
        settings: dict[str, Any] = {
            "host": self.host,
            "port": self.imaps_port if secure else self.imap_port,
            "secure": secure,
            "auth": {"user": self.username, "pass": self.password},
        }
        if secure:
            settings["tls"] = {"rejectUnauthorized": False}
        return settings


def _check_field(name: str, value: str) -> None:
    bad = not value or any(ch in value for ch in FORBIDDEN_IN_FIELDS)
    if name == "username":
        # The username is also a file name (passwd.d/<username>).
        bad = bad or "/" in value or value in (".", "..")
    if bad:
        raise ValueError(f"invalid {name} for passwd-file: {value!r}")


def _make_root() -> str:
    root = tempfile.mkdtemp(prefix="dovecot-")
    if len(root) > MAX_ROOT_LEN:
        shutil.rmtree(root, ignore_errors=True)
        root = tempfile.mkdtemp(prefix="dovecot-", dir="/tmp")
    # mkdtemp gives 0700; the login (dovenull) and mail (dovecot) processes
    # must be able to traverse it.
    os.chmod(root, 0o755)
    return root


def _set_parent_death_signal() -> None:
    """In the child: get SIGTERM if the starting thread dies (no orphans)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Dovecot:
    """One private Dovecot instance.

    Usage::

        server = Dovecot().start()
        user = server.add_user()
        with user.imap_client() as client: ...
        server.stop()

    Attributes (valid after ``start()``): ``host``, ``imap_port``,
    ``imaps_port``, ``base_dir`` (the temp dir), ``cert_path``,
    ``config_path``, ``log_path``, ``delimiter``.

    ``extra_config`` is appended to the configuration; a callable is given the instance's
    directory first, for settings that need files of their own there (removed with it).
    """

    delimiter = "/"
    start_attempts = 3

    def __init__(
        self,
        host: str = LOOPBACK,
        binary: str | None = None,
        startup_timeout: float = 10.0,
        debug: bool = False,
        extra_config: str | Callable[[str], str] = "",
        keep_dir: bool = False,
        single_passwd_file: bool = False,
    ) -> None:
        self.host = host
        self.binary = binary or shutil.which("dovecot") or "/usr/sbin/dovecot"
        self.startup_timeout = startup_timeout
        self.debug = debug
        self.extra_config = extra_config
        self.keep_dir = keep_dir
        self.single_passwd_file = single_passwd_file
        self.imap_port: int | None = None
        self.imaps_port: int | None = None
        self.base_dir: str | None = None
        self.cert_path: str | None = None
        self.key_path: str | None = None
        self.config_path: str | None = None
        self.log_path: str | None = None
        self._stderr_path: str | None = None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.users: dict[str, MailUser] = {}

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "Dovecot":
        """Start and wait until IMAP and IMAPS both greet ``* OK``."""
        if self._proc is not None:
            raise RuntimeError("Dovecot already started")
        if os.geteuid() != 0:
            raise DovecotError("the Dovecot test server must be started as root")
        for attempt in range(1, self.start_attempts + 1):
            try:
                self._start_once()
            except BaseException as exc:
                self._teardown()
                port_race = "Address already in use" in str(exc)
                if not port_race or attempt == self.start_attempts:
                    raise
            else:
                atexit.register(self.stop)
                return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Kill Dovecot (and its children) and delete the temp dir."""
        atexit.unregister(self.stop)
        self._teardown()

    def kill(self) -> None:
        """Stop the server abruptly but keep its mail, config and ports (see ``revive``)."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None:
                _terminate(proc)

    def revive(self) -> None:
        """Start again after ``kill`` on the same ports with the same mail and users."""
        if self._proc is not None:
            raise RuntimeError("Dovecot is running")
        self._spawn()
        self._wait_ready()

    def deliver_to_maildir(self, user: "MailUser | str", raw: bytes) -> str:
        """Drop a message straight into the user's INBOX Maildir, as an MTA would, even
        while Dovecot is down (``kill``); Dovecot indexes it when it next looks."""
        username = user.username if isinstance(user, MailUser) else user
        new_dir = os.path.join(self.base_dir, "mail", username, "Maildir", "new")
        if not os.path.isdir(new_dir):
            raise DovecotError(f"{username} has no Maildir yet (log in once first)")
        name = f"{time.time():.6f}.{uuid.uuid4().hex}.test"
        tmp = os.path.join(os.path.dirname(new_dir), "tmp", name)
        with open(tmp, "wb") as fh:
            fh.write(raw)
        mail = pwd.getpwnam(MAIL_SYSTEM_USER)
        os.chown(tmp, mail.pw_uid, mail.pw_gid)
        os.rename(tmp, os.path.join(new_dir, name))
        return name

    def restart(self) -> None:
        self.kill()
        self.revive()

    def __enter__(self) -> "Dovecot":
        return self if self._proc else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _start_once(self) -> None:
        self.users = {}
        self.base_dir = _make_root()
        self.imap_port = find_free_port(self.host)
        self.imaps_port = find_free_port(self.host)
        while self.imaps_port == self.imap_port:
            self.imaps_port = find_free_port(self.host)
        self._prepare_dirs()
        self.cert_path, self.key_path = write_self_signed_cert(
            os.path.join(self.base_dir, "tls")
        )
        self.config_path = self._write_config()
        self._spawn()
        self._wait_ready()

    def _prepare_dirs(self) -> None:
        mail = pwd.getpwnam(MAIL_SYSTEM_USER)
        for sub in ("tls", "state", "passwd.d", "mail"):
            os.mkdir(os.path.join(self.base_dir, sub), 0o755)
        os.chmod(os.path.join(self.base_dir, "tls"), 0o700)
        if self.single_passwd_file:
            passwd = os.path.join(self.base_dir, "passwd")
            open(passwd, "w").close()  # noqa: SIM115 - an empty file, closed at once
            os.chmod(passwd, 0o644)
        os.chown(os.path.join(self.base_dir, "mail"), mail.pw_uid, mail.pw_gid)
        self.log_path = os.path.join(self.base_dir, "dovecot.log")
        self._stderr_path = os.path.join(self.base_dir, "dovecot.stderr")

    def _write_config(self) -> str:
        mail = pwd.getpwnam(MAIL_SYSTEM_USER)
        with open(TEMPLATE_PATH, encoding="utf-8") as fh:
            template = string.Template(fh.read())
        text = template.substitute(
            instance_name=f"test-{os.path.basename(self.base_dir)}",
            root=self.base_dir,
            host=self.host,
            imap_port=self.imap_port,
            imaps_port=self.imaps_port,
            cert_path=self.cert_path,
            key_path=self.key_path,
            mail_uid=mail.pw_uid,
            mail_gid=mail.pw_gid,
            debug="yes" if self.debug else "no",
            extra_config=(self.extra_config(self.base_dir) if callable(self.extra_config)
                          else self.extra_config),
            passwd_path=os.path.join(self.base_dir, "passwd") if self.single_passwd_file
            else os.path.join(self.base_dir, "passwd.d", "%u"),
        )
        path = os.path.join(self.base_dir, "dovecot.conf")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def _spawn(self) -> None:
        in_main_thread = threading.current_thread() is threading.main_thread()
        with open(self._stderr_path, "wb") as err:
            self._proc = subprocess.Popen(
                [self.binary, "-F", "-c", self.config_path],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal if in_main_thread else None,
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        try:
            for port, tls in ((self.imap_port, None), (self.imaps_port, client_context())):
                wait_for_greeting(
                    self.host, port, b"* OK", deadline, tls=tls, alive=lambda: self.running
                )
        except (TimeoutError, RuntimeError) as exc:
            raise DovecotError(f"Dovecot did not start: {exc}\n{self.read_log()}") from exc

    def _teardown(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None:
                _terminate(proc)
            if self.base_dir and not self.keep_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- diagnostics -------------------------------------------------------

    def read_log(self) -> str:
        """Dovecot's log plus anything it printed before logging started."""
        parts = []
        for label, path in (("stderr", self._stderr_path), ("log", self.log_path)):
            if path and os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    parts.append(f"--- dovecot {label} ({path}) ---\n{fh.read()}")
        return "\n".join(parts) or "(no dovecot output)"

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm -c <this config> *args``; return its stdout.

        E.g. ``doveadm("mailbox", "status", "-u", user.username, "messages", "INBOX")``.
        """
        binary = shutil.which("doveadm") or "/usr/bin/doveadm"
        result = subprocess.run(
            [binary, "-c", self.config_path, *args], capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            raise DovecotError(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # -- users -------------------------------------------------------------

    def add_user(self, username: str | None = None, password: str | None = None) -> MailUser:
        """Create a mailbox; usable for login immediately.

        Defaults: ``user-<hex>@example.test`` and a random password.
        Re-adding an existing username changes its password (this waits up
        to 1 s so Dovecot cannot serve the old entry).
        """
        if not self.running:
            raise RuntimeError("Dovecot is not running")
        username = username or f"user-{secrets.token_hex(6)}@example.test"
        password = password or secrets.token_urlsafe(12)
        _check_field("username", username)
        _check_field("password", password)
        if self.single_passwd_file:
            if username in self.users:
                raise ValueError(f"{username} exists (one passwd-file: users are only added)")
            self._append_passwd_entry(username, password)
        else:
            replacing = os.path.exists(self._passwd_path(username))
            self._write_passwd_entry(username, password)
            if replacing:
                _wait_for_next_second()
        user = MailUser(
            username=username,
            password=password,
            host=self.host,
            imap_port=self.imap_port,
            imaps_port=self.imaps_port,
            cert_path=self.cert_path,
        )
        self.users[username] = user
        return user

    def remove_user(self, user: MailUser | str, wait: bool = True) -> None:
        """Delete the login (mail files are left until ``stop()``).

        Dovecot may serve a cached lookup of the file for the rest of the
        current second, so by default this returns only once that is over.
        Open sessions are not kicked.
        """
        if self.single_passwd_file:
            raise NotImplementedError("users are only added to a single passwd-file")
        username = user if isinstance(user, str) else user.username
        self.users.pop(username, None)
        try:
            os.unlink(self._passwd_path(username))
        except FileNotFoundError:
            return
        if wait:
            _wait_for_next_second()

    def _passwd_path(self, username: str) -> str:
        return os.path.join(self.base_dir, "passwd.d", username)

    def wait_users_loaded(self) -> None:
        """With one passwd-file: until Dovecot would read the users added so far (it
        re-reads a changed file at most once a second)."""
        _wait_for_next_second()

    @staticmethod
    def _passwd_line(username: str, password: str) -> str:
        # user:{PLAIN}password:uid:gid:gecos:home:shell:extra_fields
        mail = pwd.getpwnam(MAIL_SYSTEM_USER)
        return f"{username}:{{PLAIN}}{password}:{mail.pw_uid}:{mail.pw_gid}::::\n"

    def _append_passwd_entry(self, username: str, password: str) -> None:
        # One write of a whole line (O_APPEND): auth never reads half of one.
        with self._lock, open(os.path.join(self.base_dir, "passwd"), "a",
                              encoding="utf-8") as fh:
            fh.write(self._passwd_line(username, password))

    def _write_passwd_entry(self, username: str, password: str) -> None:
        line = self._passwd_line(username, password)
        path = self._passwd_path(username)
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(line)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # atomic: auth never sees a half-written file


def _wait_for_next_second() -> None:
    """Dovecot re-stats a passwd-file at most once per wall-clock second."""
    time.sleep(1.02 - time.time() % 1)


def _terminate(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGKILL Dovecot's whole process group (its own session).

    A graceful SIGTERM makes the master wait ~1 s for its children; the temp
    dir is deleted right after anyway, so there is nothing to flush.
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=timeout)
