"""Hoodiecrow, an in-memory IMAP server written for client tests, as the Gmail stand-in.

Gmail's IMAP extensions (X-GM-EXT-1: X-GM-MSGID, X-GM-LABELS, X-GM-RAW) exist on no server
Dovecot can be; hoodiecrow implements X-GM-MSGID and X-GM-LABELS and refuses X-GM-RAW and
X-GM-THRID (its documented limits). ``tests/servers/gmail_imap/launch.js`` starts it with
X-GM-EXT-1 advertised; its npm packages are installed on first use from the lock file
(``npm ci``), under a file lock so parallel test workers install once. Login: ``testuser`` /
``testpass``. Each server holds the folders and messages it was started with, in memory.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import tempfile
import time
from pathlib import Path

import imapclient

from tests.servers.net import LOOPBACK, find_free_port

HERE = Path(__file__).parent / "gmail_imap"
USER, PASSWORD = "testuser", "testpass"


def ensure_installed() -> None:
    """``npm ci`` in ``gmail_imap/`` unless its packages are there (one worker at a time)."""
    with open(HERE / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (HERE / "node_modules" / "hoodiecrow-imap" / "package.json").exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                           capture_output=True, timeout=300)


class Hoodiecrow:
    """``Hoodiecrow(inbox=[raw, ...]).start()``; ``client()`` logs in; ``stop()``.

    ``storage``: the whole folder tree in hoodiecrow's own form instead (INBOX's
    ``messages``, and ``""``: ``{"separator", "folders"}``, each folder with ``messages``,
    ``special-use`` and ``folders``); a message is ``{"raw", "flags"}`` and may preset its
    ``X-GM-MSGID`` and ``X-GM-LABELS`` (hoodiecrow adds the label of the folder it is in)."""

    def __init__(self, inbox: list[bytes] = (), flags: dict[int, list[str]] | None = None,
                 storage: dict | None = None):
        flags = flags or {}
        self.storage = storage or {
            "INBOX": {"messages": [{"raw": raw.decode("utf-8"), "flags": flags.get(i, [])}
                                   for i, raw in enumerate(inbox)]},
            "": {"separator": "/", "folders": {"[Gmail]": {"flags": ["\\Noselect"], "folders": {
                "All Mail": {"special-use": "\\All"}, "Sent Mail": {"special-use": "\\Sent"}}}}},
        }
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._storage_file = None

    def start(self) -> "Hoodiecrow":
        ensure_installed()
        self._storage_file = tempfile.NamedTemporaryFile("w", suffix=".json")
        json.dump(self.storage, self._storage_file)
        self._storage_file.flush()
        self.port = find_free_port()
        self.process = subprocess.Popen(
            ["node", str(HERE / "launch.js"), str(self.port), self._storage_file.name],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if line.strip() != "listening":
            self.stop()
            raise RuntimeError(f"hoodiecrow did not start: {line!r}")
        return self

    def client(self) -> imapclient.IMAPClient:
        deadline = time.monotonic() + 5
        while True:
            try:
                client = imapclient.IMAPClient(LOOPBACK, port=self.port, ssl=False, timeout=5)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.login(USER, PASSWORD)
        return client

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=5)
        if self._storage_file is not None:
            self._storage_file.close()
