"""Proof that the mail-server test rig works, independent of Django.

Why: every API test depends on tests/servers/ (a private Dovecot, a
recording SMTP server, realistic seed messages).  If the rig is broken, API
tests fail in confusing ways; these tests fail first and say what is wrong.
They use no database; the ``dovecot``, ``mail_user``, ``smtp_server`` and
``smtp_user`` fixtures come from tests/conftest.py.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import itertools
import os
import smtplib
import socket
import ssl
import time

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.servers import dovecot as dovecot_module
from tests.servers import seed
from tests.servers.dovecot import Dovecot, DovecotError, MailUser, find_free_port

REQUIRED_CAPABILITIES = {
    b"CONDSTORE", b"QRESYNC", b"IDLE", b"MOVE", b"SPECIAL-USE", b"UIDPLUS", b"ENABLE",
    b"LIST-STATUS", b"ESEARCH",
}
SPECIAL_USE = {
    "Sent": b"\\Sent",
    "Drafts": b"\\Drafts",
    "Trash": b"\\Trash",
    "Junk": b"\\Junk",
    "Archive": b"\\Archive",
}


def _port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _unverified() -> ssl.SSLContext:
    return ssl._create_unverified_context()


# -- Dovecot ---------------------------------------------------------------


def test_dovecot_start_and_stop_are_fast_and_clean():
    started = time.monotonic()
    server = Dovecot().start()
    elapsed = time.monotonic() - started
    base_dir, ports = server.base_dir, (server.imap_port, server.imaps_port)
    try:
        # A bound for a hang, not a speed target (a loaded machine takes seconds; bench/ is
        # where speed is measured).
        assert elapsed < 60, f"startup took {elapsed:.2f}s"
        assert server.host == "127.0.0.1"
        assert os.path.isfile(server.cert_path)
        assert os.path.isfile(server.log_path)
    finally:
        server.stop()
    assert not os.path.exists(base_dir)
    # Its killed login processes let go of the listening sockets a moment after the master.
    deadline = time.monotonic() + 30
    while any(_port_open("127.0.0.1", port) for port in ports):
        assert time.monotonic() < deadline, f"ports {ports} still open after stop"
        time.sleep(0.1)


@pytest.mark.parametrize(
    "kwargs, secured",
    [({}, False), ({"ssl": True}, True), ({"starttls": True}, True)],
    ids=["imap", "imaps", "starttls"],
)
def test_user_logs_in(mail_user, kwargs, secured):
    client = mail_user.imap_client(**kwargs)
    try:
        assert isinstance(client._imap.sock, ssl.SSLSocket) is secured
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_prelogin_capabilities_offer_starttls_and_plain_auth(dovecot):
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False) as client:
        caps = set(client.capabilities())
    assert {b"STARTTLS", b"AUTH=PLAIN", b"AUTH=LOGIN"} <= caps


def test_capabilities_after_login(mail_user):
    with mail_user.imap_client() as client:
        caps = set(client.capabilities())
        assert REQUIRED_CAPABILITIES <= caps, REQUIRED_CAPABILITIES - caps
        assert client.enable("QRESYNC") == [b"QRESYNC"]
        assert b"HIGHESTMODSEQ" in client.select_folder("INBOX")


def test_special_use_folders_exist_and_are_subscribed(mail_user):
    with mail_user.imap_client() as client:
        listed = {name: flags for flags, _, name in client.list_folders()}
        subscribed = {name for _, _, name in client.list_sub_folders()}
    for name, flag in SPECIAL_USE.items():
        assert flag in listed[name], (name, listed.get(name))
        assert name in subscribed
    assert "INBOX" in listed


def test_wrong_password_is_rejected(dovecot, mail_user):
    bad = dataclasses.replace(mail_user, password="wrong")
    with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
        bad.imap_client()


def test_unknown_user_is_rejected(dovecot):
    ghost = MailUser("ghost@example.test", "x", dovecot.host, dovecot.imap_port, dovecot.imaps_port)
    with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
        ghost.imap_client()


def test_new_users_work_immediately(dovecot):
    # Regression guard: a single shared passwd-file failed ~50% of these.
    for _ in range(20):
        dovecot.add_user().imap_client().logout()


def _passwd_files_open_in_auth(server: Dovecot) -> int:
    """How many of ``server``'s passwd-files its auth process holds open."""
    title = f"dovecot-test-{os.path.basename(server.base_dir)}/auth"
    held = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if not fh.read().startswith(title.encode()):
                    continue
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        held += sum(link.startswith(os.path.join(server.base_dir, "passwd")) for link in links)
    return held


@pytest.mark.parametrize("single", [False, True], ids=["file-per-user", "single-file"])
def test_a_single_passwd_file_logs_users_in_and_keeps_one_descriptor(single):
    """Dovecot's auth keeps each passwd-file it read open: 20,000 users in files of their own
    take every descriptor it may have; the scale benches use one file."""
    with Dovecot(single_passwd_file=single) as server:
        users = [server.add_user() for _ in range(12)]
        if single:
            server.wait_users_loaded()
        for user in users:
            user.imap_client().logout()
        assert _passwd_files_open_in_auth(server) == (1 if single else len(users))
        if single:
            with pytest.raises(NotImplementedError):
                server.remove_user(users[0])


def test_explicit_credentials_and_removal(dovecot):
    user = dovecot.add_user("alice.rig@example.test", "s3cret-pass")
    assert user.email == "alice.rig@example.test"
    user.imap_client().logout()
    dovecot.remove_user(user)
    with pytest.raises(LoginError):
        user.imap_client()


def test_imap_settings_shape(mail_user):
    plain = mail_user.imap_settings()
    assert plain == {
        "host": "127.0.0.1",
        "port": mail_user.imap_port,
        "secure": False,
        "auth": {"user": mail_user.username, "pass": mail_user.password},
    }
    secure = mail_user.imap_settings(secure=True)
    assert secure["port"] == mail_user.imaps_port
    assert secure["secure"] is True
    assert secure["tls"] == {"rejectUnauthorized": False}


def test_startup_failure_reports_dovecot_log():
    with pytest.raises(DovecotError, match="no_such_setting"):
        Dovecot(extra_config="no_such_setting = 1\n").start()


def test_port_race_is_retried(monkeypatch):
    """Another xdist worker grabbing "our" free port must not break start()."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = itertools.chain([taken], iter(find_free_port, None))
        monkeypatch.setattr(dovecot_module, "find_free_port", lambda host: next(ports))
        with Dovecot() as server:
            assert taken not in (server.imap_port, server.imaps_port)
            server.add_user().imap_client().logout()


def test_doveadm_sees_seeded_mail(dovecot, mail_user):
    seed.seed_mailbox(mail_user, messages=[seed.make_message()])
    out = dovecot.doveadm("mailbox", "status", "-u", mail_user.username, "messages", "INBOX")
    assert out.strip() == "INBOX messages=1"


def test_two_instances_run_side_by_side(dovecot, mail_user):
    other = Dovecot().start()
    try:
        assert {other.imap_port, other.imaps_port}.isdisjoint(
            {dovecot.imap_port, dovecot.imaps_port}
        )
        assert other.base_dir != dovecot.base_dir
        other_user = other.add_user()
        with other_user.imap_client() as a, mail_user.imap_client() as b:
            assert a.noop()
            assert b.noop()
        # Users are per instance.
        with pytest.raises(LoginError):
            dataclasses.replace(other_user, imap_port=dovecot.imap_port).imap_client()
    finally:
        other.stop()
    with mail_user.imap_client() as client:
        assert client.noop()


# -- seeding ----------------------------------------------------------------


def test_seed_six_messages_and_fetch_back(mail_user):
    named = seed.build_named_messages()
    uids = seed.seed_mailbox(mail_user, flags_for={0: [b"\\Seen"], 4: [b"\\Flagged"]})
    assert len(uids) == 6
    assert uids == sorted(set(uids))
    with mail_user.imap_client() as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search() == uids
        fetched = client.fetch(uids, ["RFC822", "FLAGS", "ENVELOPE"])
    for uid, (name, raw) in zip(uids, named.items(), strict=True):
        assert fetched[uid][b"RFC822"] == raw, name
        assert fetched[uid][b"ENVELOPE"].message_id.decode() == seed.MESSAGE_IDS[name]
    assert b"\\Seen" in fetched[uids[0]][b"FLAGS"]
    assert b"\\Flagged" in fetched[uids[4]][b"FLAGS"]


def test_seed_messages_have_the_promised_shapes():
    parsed = {
        name: email.message_from_bytes(raw, policy=email.policy.default)
        for name, raw in seed.build_named_messages().items()
    }
    assert parsed["unicode"]["Subject"] == seed.UNICODE_SUBJECT
    headers = seed.build_named_messages()["unicode"].split(b"\r\n\r\n")[0]
    assert headers.isascii()
    assert b"=?utf-8?" in headers
    assert parsed["alternative"].get_content_type() == "multipart/alternative"
    mixed = parsed["attachments"]
    assert mixed.get_content_type() == "multipart/mixed"
    attachment = next(mixed.iter_attachments())
    assert attachment.get_filename() == seed.PDF_FILENAME
    inline = next(p for p in mixed.walk() if p["Content-ID"])
    assert inline["Content-ID"] == f"<{seed.IMAGE_CID}>"
    assert inline.get_filename() == seed.IMAGE_FILENAME
    assert parsed["reply"]["In-Reply-To"] == seed.MESSAGE_IDS["plain"]
    assert parsed["malformed"]["Date"] is None
    assert seed.MALFORMED_SUBJECT_BYTES in seed.build_named_messages()["malformed"]


def test_seed_into_new_nested_folder(mail_user):
    folder = "Projects/2024"
    uids = seed.seed_mailbox(mail_user, folder, [seed.make_message(subject="nested")])
    with mail_user.imap_client() as client:
        assert client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"] == 1
    assert len(uids) == 1


def test_idle_sees_new_mail(mail_user):
    with mail_user.imap_client() as watcher:
        watcher.select_folder("INBOX")
        watcher.idle()
        seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="ping")])
        responses = watcher.idle_check(timeout=5)
        watcher.idle_done()
    assert any(r[1] == b"EXISTS" for r in responses), responses


# -- SMTP ---------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_smtp_starttls_auth_and_record(smtp_server, smtp_user, mechanism):
    raw = seed.make_message(subject=f"via {mechanism}", from_=smtp_user.email)
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=_unverified())
        client.ehlo()
        client.user, client.password = smtp_user.username, smtp_user.password
        code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
        assert code == 235
        client.sendmail(smtp_user.email, ["bob@example.test"], raw)
    [received] = smtp_server.wait_for_messages(1)
    assert received.auth_user == smtp_user.username
    assert received.mail_from == smtp_user.email
    assert received.rcpt_tos == ["bob@example.test"]
    assert received.data == raw
    assert received.message["Subject"] == f"via {mechanism}"


def test_smtp_auth_without_tls(smtp_server, smtp_user):
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as client:
        assert client.login(smtp_user.username, smtp_user.password)[0] == 235


def test_smtp_rejects_bad_password(smtp_server, smtp_user):
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            client.login(smtp_user.username, "wrong")
    assert info.value.smtp_code == 535


def test_smtp_requires_auth_to_send(smtp_server, smtp_user):
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.sendmail("x@example.test", ["y@example.test"], b"Subject: x\r\n\r\nx\r\n")
    assert info.value.smtp_code == 530
    assert smtp_server.messages == []


def test_smtp_settings_shape(smtp_server):
    assert smtp_server.smtp_settings("u", "p") == {
        "host": "127.0.0.1",
        "port": smtp_server.port,
        "secure": False,
        "auth": {"user": "u", "pass": "p"},
    }


def test_find_free_port_is_bindable():
    port = find_free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
