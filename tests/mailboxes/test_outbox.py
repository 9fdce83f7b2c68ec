"""The outbox and its send job against real Dovecot and the real (aiosmtpd) SMTP server:
retries on the schedule, permanent failures, claims that never send twice, leases, the sweep
after a Redis flush, cancellation and sendAt."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections
from django.utils import timezone

from accounts.models import EmailAccount
from mailboxes import ids, listing, outbox, sending
from mailboxes.errors import MailboxUnavailable, QueueEntryNotCancellable, ServerRefused
from mailboxes.models import Folder, Message, OutboxEntry
from tests.base import wait_for
from tests.mailboxes.helpers import events_of
from tests.mailboxes.rq_workers import kill, rqworker
from tests.mailboxes.sending_helpers import (
    KillBeforeQueries,
    SessionKiller,
    backend_pid,
    queue,
    raw_message,
    sync,
    work_send_queue,
)
from tests.servers import seed

pytestmark = pytest.mark.django_db(transaction=True)

State = OutboxEntry.State
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fast_retries(settings):
    """Retries due at once, so a test drives attempts without sleeping."""
    settings.SEND_RETRY_SCHEDULE = [0, 0, 0]
    return settings


def _reload(entry: OutboxEntry) -> OutboxEntry:
    return OutboxEntry.objects.get(pk=entry.pk)


def test_it_sends_the_raw_message_to_its_envelope_and_copies_it_to_sent(account, smtp_server):
    raw = raw_message(subject="Quarterly numbers")
    entry = queue(account, raw, envelope={"from": "me@example.test",
                                          "to": ["bob@example.test", "carol@example.test"]})

    assert sending.send_entry(entry.pk) == "sent"

    received = smtp_server.wait_for_messages(1)[0]
    assert received.mail_from == "me@example.test"
    assert received.rcpt_tos == ["bob@example.test", "carol@example.test"]
    assert received.message["Subject"] == "Quarterly numbers"
    assert received.auth_user == account.smtp["auth"]["user"]
    entry = _reload(entry)
    assert entry.state == State.SENT
    assert entry.attempts == 1
    assert entry.response.startswith("250 ")
    assert bytes(entry.raw) == b"", "content is dropped once sent and copied"
    copy = Message.objects.get(folder__email_account=account, folder__special_use="\\Sent")
    assert copy.subject == "Quarterly numbers"
    assert "\\Seen" in copy.flags
    assert entry.sent_copy == {"path": "Sent", "uid": copy.uid, "id": entry.sent_copy["id"]}
    [sent] = events_of(account, "messageSent")
    assert sent.data == {"queueId": entry.queue_id, "messageId": "<outbox-test@example.test>",
                         "response": entry.response, "envelope": entry.envelope}


def test_a_server_refusing_the_first_two_attempts_gets_it_on_the_third(
        account, smtp_server, fast_retries):
    smtp_server.refuse_next(2, "451 4.3.0 Try again later")
    entry = queue(account)

    outcomes = [sending.send_entry(entry.pk) for _ in range(3)]

    assert outcomes == ["retry", "retry", "sent"]
    assert len(smtp_server.refused) == 2
    assert len(smtp_server.wait_for_messages(1)) == 1
    entry = _reload(entry)
    assert entry.state == State.SENT
    assert entry.attempts == 3
    assert entry.last_error["responseCode"] == 451  # the last failure stays visible
    assert len(events_of(account, "messageSent")) == 1
    assert events_of(account, "messageFailed") == []
    # One messageDeliveryError per attempt that will be tried again (EmailEngine's event).
    errors = events_of(account, "messageDeliveryError")
    assert [event.data["attemptsMade"] for event in errors] == [1, 2]
    assert errors[0].data["responseCode"] == 451
    assert errors[0].data["queueId"] == entry.queue_id
    assert errors[0].data["attempts"] == entry.max_attempts
    assert errors[0].data["nextAttempt"]
    assert sending.send_entry(entry.pk) == "skipped"  # a late duplicate job changes nothing


def test_a_server_always_refusing_with_5xx_fails_the_entry_at_once_and_keeps_it(
        account, smtp_server, fast_retries):
    smtp_server.refuse_always("550 5.7.1 Relaying denied", stage="rcpt")
    entry = queue(account)

    assert sending.send_entry(entry.pk) == "failed"
    assert sending.send_entry(entry.pk) == "skipped"

    entry = _reload(entry)
    assert entry.state == State.FAILED
    assert entry.attempts == 1
    assert bytes(entry.raw), "a failed message is kept, not lost"
    assert entry.last_error == {"error": "550 5.7.1 Relaying denied", "code": "SmtpRefused",
                                "responseCode": 550, "command": "RCPT TO"}
    [failed] = events_of(account, "messageFailed")
    assert failed.data["queueId"] == entry.queue_id
    assert failed.data["responseCode"] == 550
    assert failed.data["error"] == "550 5.7.1 Relaying denied"
    assert failed.data["envelope"] == entry.envelope
    assert smtp_server.messages == []


def test_a_server_always_deferring_fails_after_the_last_attempt(account, smtp_server,
                                                                fast_retries):
    smtp_server.refuse_always("421 4.7.0 Too busy")
    entry = queue(account, delivery_attempts=3)

    outcomes = [sending.send_entry(entry.pk) for _ in range(4)]

    assert outcomes == ["retry", "retry", "failed", "skipped"]
    assert len(smtp_server.refused) == 3
    assert _reload(entry).state == State.FAILED
    [failed] = events_of(account, "messageFailed")
    assert failed.data["responseCode"] == 421
    assert failed.data["attemptsMade"] == 3


def test_a_retry_waits_for_its_delay(account, smtp_server, settings):
    settings.SEND_RETRY_SCHEDULE = [60, 600]
    smtp_server.refuse_next(1, "450 4.2.1 Mailbox busy")
    entry = queue(account)
    before = timezone.now()

    assert sending.send_entry(entry.pk) == "retry"
    assert sending.send_entry(entry.pk) == "skipped", "not due before its delay"

    entry = _reload(entry)
    assert entry.state == State.QUEUED
    assert timedelta(seconds=59) < entry.next_attempt_at - before < timedelta(seconds=62)
    assert outbox.due_entries() == []
    assert smtp_server.messages == []


def test_a_refused_login_is_retried_then_fails(account, smtp_server, fast_retries):
    fast_retries.SEND_AUTH_ATTEMPTS = 2
    smtp_server.add_user(account.smtp["auth"]["user"], "another password")

    entry = queue(account)

    assert [sending.send_entry(entry.pk) for _ in range(3)] == ["retry", "failed", "skipped"]
    entry = _reload(entry)
    assert entry.last_error["code"] == "AuthenticationFailed"
    assert entry.last_error["responseCode"] == 535
    assert len(events_of(account, "messageFailed")) == 1


def test_jobs_racing_for_one_entry_send_it_once(account, smtp_server):
    entry = queue(account)
    outcomes = []

    def job():
        try:
            outcomes.append(sending.send_entry(entry.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=job) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["sent", "skipped", "skipped", "skipped"]
    assert len(smtp_server.messages) == 1  # stored before the server's 250
    assert len(events_of(account, "messageSent")) == 1


def test_an_entry_left_sending_by_a_killed_job_is_retried_after_its_lease(account, smtp_server):
    entry = queue(account)
    assert outbox.claim(entry.pk) is not None  # a job that claimed it, then died

    assert sending.send_entry(entry.pk) == "skipped", "the lease still holds"
    assert outbox.due_entries() == []
    OutboxEntry.objects.filter(pk=entry.pk).update(lease_until=timezone.now() - timedelta(1))
    assert outbox.due_entries() == [(entry.pk, entry.queue_id, True)]

    assert sending.send_entry(entry.pk) == "sent"
    assert _reload(entry).attempts == 2
    assert len(smtp_server.wait_for_messages(1)) == 1


def test_a_worker_killed_mid_send_leaves_the_entry_to_be_retried_once(
        account, smtp_server, settings, redis_db):
    """A real ``rqworker`` process SIGKILLed while the server stalls before answering DATA:
    the entry stays ``sending`` under its lease, and after it the sweep and a worker send it
    exactly once."""
    smtp_server.refuse_next(1, "451 4.3.0 Too late", delay=10)
    entry = queue(account)
    sending.enqueue(entry.pk, entry.queue_id)
    with rqworker(settings, "send") as victim:
        smtp_server.wait_for_refusals(1, timeout=30)  # the victim is inside DATA now
        kill(victim)

    entry = _reload(entry)
    assert entry.state == State.SENDING
    assert entry.attempts == 1
    assert sending.enqueue_due() == 0, "not before its lease runs out"
    OutboxEntry.objects.filter(pk=entry.pk).update(lease_until=timezone.now() - timedelta(1))
    assert sending.enqueue_due() == 1, "rq still shows the dead job as started"
    work_send_queue()

    entry = _reload(entry)
    assert entry.state == State.SENT
    assert entry.attempts == 2
    assert len(smtp_server.wait_for_messages(1)) == 1
    assert len(events_of(account, "messageSent")) == 1


def test_an_interrupted_last_attempt_fails_instead_of_trying_again(account, smtp_server):
    entry = queue(account, delivery_attempts=1)
    outbox.claim(entry.pk)
    OutboxEntry.objects.filter(pk=entry.pk).update(lease_until=timezone.now() - timedelta(1))

    assert sending.send_entry(entry.pk) == "skipped"

    assert _reload(entry).state == State.FAILED
    [failed] = events_of(account, "messageFailed")
    assert failed.data["code"] == "Interrupted"
    assert smtp_server.messages == []


def test_a_claim_lost_to_another_job_records_nothing(account, smtp_server):
    entry = outbox.claim(queue(account).pk)
    OutboxEntry.objects.filter(pk=entry.pk).update(attempts=entry.attempts + 1)  # taken over

    assert outbox.mark_sent(entry, "250 OK", {}) is False
    assert outbox.mark_failed(entry, {"error": "x"}) is False
    assert events_of(account, "messageSent", "messageFailed") == []


def test_a_cancelled_entry_is_never_sent(account, smtp_server):
    entry = queue(account)

    outbox.cancel(entry)

    assert sending.send_entry(entry.pk) == "skipped"
    assert _reload(entry).state == State.CANCELLED
    assert smtp_server.messages == []
    with pytest.raises(QueueEntryNotCancellable):
        outbox.cancel(entry)


def test_a_sent_or_sending_entry_cannot_be_cancelled(account, smtp_server):
    sending_entry = outbox.claim(queue(account).pk)
    with pytest.raises(QueueEntryNotCancellable):
        outbox.cancel(sending_entry)
    sent = queue(account)
    sending.send_entry(sent.pk)
    with pytest.raises(QueueEntryNotCancellable):
        outbox.cancel(sent)


def test_send_at_in_the_future_waits_then_goes_through_the_real_queue(account, smtp_server):
    send_at = timezone.now() + timedelta(seconds=3)
    entry = queue(account, send_at=send_at)

    assert sending.enqueue_due() == 0
    assert sending.send_entry(entry.pk) == "skipped"
    # Until it is due, the sweep enqueues nothing; then it enqueues it, once.
    assert wait_for(lambda: sending.enqueue_due(), timeout=10) == 1
    assert timezone.now() >= send_at
    work_send_queue()

    assert _reload(entry).state == State.SENT
    assert len(smtp_server.wait_for_messages(1)) == 1


def test_a_redis_flush_loses_no_queued_send(account, smtp_server, redis_db):
    entry = queue(account)
    sending.enqueue(entry.pk, entry.queue_id)
    assert sending.enqueue_due() == 0, "a live job is not enqueued twice"

    redis_db.flushdb()
    assert sending.enqueue_due() == 1
    assert sending.enqueue_due() == 0
    work_send_queue()

    assert _reload(entry).state == State.SENT
    assert len(smtp_server.wait_for_messages(1)) == 1
    assert len(events_of(account, "messageSent")) == 1


def test_the_sendscheduler_command_sweeps_once(account, smtp_server, redis_db):
    from django.core.management import call_command

    entry = queue(account)
    call_command("sendscheduler", "--once")
    assert sending._job_status(entry.queue_id, redis_db) == "queued"
    work_send_queue()

    assert _reload(entry).state == State.SENT


def test_copy_off_for_the_account_or_the_entry_stores_nothing_in_sent(account, smtp_server):
    entry = queue(account, copy=False)
    sending.send_entry(entry.pk)
    account.copy = False
    account.save(update_fields=["copy"])
    sending.send_entry(queue(account).pk)
    sending.send_entry(queue(account, copy=True).pk)  # the request overrides the account

    assert len(smtp_server.wait_for_messages(3)) == 3
    assert Message.objects.filter(folder__special_use="\\Sent").count() == 1
    assert _reload(entry).sent_copy is None


def test_a_non_ascii_address_goes_out_with_smtputf8(account, smtp_server):
    entry = queue(account, envelope={"from": "me@example.test", "to": ["jürgen@example.test"]})

    assert sending.send_entry(entry.pk) == "sent"
    assert smtp_server.wait_for_messages(1)[0].rcpt_tos == ["jürgen@example.test"]


def test_an_account_without_smtp_fails_the_entry(alice, mail_user):
    from tests.mailboxes.helpers import register

    account = register(alice.tenant, mail_user)
    entry = queue(account)

    assert sending.send_entry(entry.pk) == "failed"
    assert _reload(entry).last_error["code"] == "NoSmtpSettings"


# --- database faults after the server accepted the message --------------------------------


@pytest.fixture
def killer():
    killer = SessionKiller()
    yield killer
    killer.close()


def _assert_sent_once_and_finished(account, entry: OutboxEntry, smtp_server,
                                   subject: str = "Hello from the outbox") -> OutboxEntry:
    entry = _reload(entry)
    assert entry.state == State.SENT
    assert entry.attempts == 1
    assert bytes(entry.raw) == b"", "the content is never kept after sending"
    assert [e.data["queueId"] for e in events_of(account, "messageSent")
            if e.data["queueId"] == entry.queue_id] == [entry.queue_id]
    assert outbox.due_entries() == [], "nothing left for the sweep to send again"
    assert sending.send_entry(entry.pk) == "skipped"
    assert [m.message["Subject"] for m in smtp_server.messages].count(subject) == 1
    return entry


def test_a_database_blip_right_after_the_server_accepted_still_records_the_send(
        account, smtp_server, killer):
    """The job's own PostgreSQL session is ended at the moment the SMTP server accepts DATA:
    the send is recorded once the database answers again, never tried a second time."""
    job_db = connections["default"]  # this thread's: the job runs here
    smtp_server.on_accept(lambda message: killer.kill(backend_pid(job_db)))
    entry = queue(account)
    try:
        assert sending.send_entry(entry.pk) == "sent"
    finally:
        smtp_server.on_accept(None)

    assert len(killer.killed) == 1
    entry = _assert_sent_once_and_finished(account, entry, smtp_server)
    copy = Message.objects.get(folder__email_account=account, folder__special_use="\\Sent")
    assert entry.sent_copy == {"path": "Sent", "uid": copy.uid, "id": entry.sent_copy["id"]}
    assert len(smtp_server.messages) == 1


def test_a_database_blip_before_any_statement_after_acceptance_never_sends_twice(
        alice, account, smtp_user, smtp_server, killer):
    """The session is ended before the 1st statement after the server accepted the message,
    then (another send) before the 2nd, and so on through the last one (the Sent copy, its
    index row and counters, flagging the replied-to original, the final record): every time
    the entry ends ``sent`` once, its content dropped, and ``sentCopy`` says where the copy
    went."""
    target = None
    wrapper = KillBeforeQueries(killer, lambda number, sql: number == target)
    smtp_server.on_accept(lambda message: wrapper.armed.set())
    target, sends = 0, 0
    try:
        while True:
            original_id = f"<question-{target}@example.test>"
            seed.seed_mailbox(smtp_user, messages=[seed.make_message(
                subject=f"Question {target}", message_id=original_id)])
            sync(account)
            original = Message.objects.get(folder__email_account=account, message_id=original_id)
            entry = queue(account, raw_message(subject=f"Answer {target}"),
                          message_id=f"<answer-{target}@example.test>",
                          reference={"message": ids.message_id_for(original.folder,
                                                                     original.uid),
                                     "action": "reply"})
            wrapper.armed.clear()
            wrapper.count = wrapper.kills = 0
            with connection.execute_wrapper(wrapper):
                assert sending.send_entry(entry.pk) == "sent", target
            sends += 1
            entry = _assert_sent_once_and_finished(account, entry, smtp_server,
                                                   f"Answer {target}")
            assert set(entry.sent_copy) == {"path", "uid", "id"}, (target, entry.sent_copy)
            assert listing.message_by_id(account, entry.sent_copy["id"])[1].subject == \
                f"Answer {target}", target
            original.refresh_from_db()
            assert "\\Answered" in original.flags, target
            if not wrapper.kills:  # past the last statement: every point was tried
                break
            target += 1
    finally:
        smtp_server.on_accept(None)

    assert target >= 8, f"only {target} statements after acceptance: is the hook armed?"
    assert len(smtp_server.messages) == sends
    sent = Folder.objects.get(email_account=account, special_use="\\Sent")
    assert sent.messages == sends == Message.objects.filter(folder=sent).count()


def test_a_sent_copy_the_database_cannot_index_says_so_in_words(
        account, smtp_server, killer, settings):
    """The database refuses every statement on the message index for longer than the retry
    budget: the copy is in Sent and the entry says so, and that it is not indexed yet, in
    words; the next sync indexes it."""
    settings.SEND_RECORD_RETRY = 1
    wrapper = KillBeforeQueries(killer, lambda number, sql: "mailboxes_message" in sql)
    smtp_server.on_accept(lambda message: wrapper.armed.set())
    entry = queue(account)
    try:
        with connection.execute_wrapper(wrapper):
            assert sending.send_entry(entry.pk) == "sent"
    finally:
        smtp_server.on_accept(None)

    assert wrapper.kills >= 2, "retried, then gave up"
    entry = _assert_sent_once_and_finished(account, entry, smtp_server)
    copy = entry.sent_copy
    assert copy["path"] == "Sent"
    assert copy["uid"]
    assert copy["id"]
    assert copy["error"] == ("Stored in Sent, but not indexed yet: the database was "
                             "unavailable. The next sync of the folder indexes it.")
    assert not Message.objects.filter(folder__special_use="\\Sent").exists()
    sync(account)
    assert listing.message_by_id(account, copy["id"])[1].subject == "Hello from the outbox"


def test_a_sent_folder_gone_from_the_server_is_said_in_words(account, smtp_server):
    Folder.objects.filter(email_account=account, special_use="\\Sent").update(path="Gone")
    entry = queue(account)

    assert sending.send_entry(entry.pk) == "sent"

    entry = _assert_sent_once_and_finished(account, entry, smtp_server)
    assert entry.sent_copy == {"error": "No copy was stored in Sent: the Sent folder no "
                                        "longer exists on the mail server"}


def test_a_sent_folder_replaced_on_the_server_gets_the_copy_and_no_stale_id(
        account, smtp_user, smtp_server):
    """Deleted behind the index's back, Sent is created again by the APPEND (Dovecot's
    special-use autocreate): the copy is there, under a UIDVALIDITY the index does not know
    yet, so no id is given for it until the worker reindexes the folder."""
    with smtp_user.imap_client() as other:
        other.delete_folder("Sent")
    entry = queue(account)

    assert sending.send_entry(entry.pk) == "sent"

    entry = _assert_sent_once_and_finished(account, entry, smtp_server)
    assert entry.sent_copy == {
        "path": "Sent", "uid": 1, "id": None,
        "error": "Stored in Sent, but not indexed yet: the folder was replaced on the mail "
                 "server. The next sync of the folder indexes it."}


def test_recording_a_send_again_after_its_commit_went_through_changes_nothing(
        account, smtp_server):
    """A connection lost after COMMIT reached the server (the answer never came back): the
    retry finds the entry sent by this very attempt, and records no second event."""
    entry = outbox.claim(queue(account).pk)

    assert outbox.mark_sent(entry, "250 OK", {}, copy_pending=True) is True
    assert outbox.mark_sent(entry, "250 OK", {}, copy_pending=True) is True

    entry = _reload(entry)
    assert entry.state == State.SENT
    assert bytes(entry.raw) == b""
    assert "not recorded yet" in entry.sent_copy["error"]
    assert len(events_of(account, "messageSent")) == 1


# --- pure functions -----------------------------------------------------------------------


@pytest.mark.parametrize("code,permanent", [(550, True), (554, True), (451, False), (421, False)])
def test_refusals_are_classified_by_their_reply_code(code, permanent):
    failure = sending.classify_response(code, b"text")
    assert failure.permanent is permanent
    assert failure.response_code == code
    assert failure.message == f"{code} text"


def test_the_retry_delay_follows_the_schedule_and_repeats_its_last_step(settings):
    settings.SEND_RETRY_SCHEDULE = [10, 30]
    assert [outbox.retry_delay(n).total_seconds() for n in (1, 2, 3, 9)] == [10, 30, 30, 30]
    assert outbox.default_attempts() == 3



def test_a_step_after_sending_says_why_it_failed_in_words():
    # The command pool answers a server's failure mid-command as a domain error.
    account = EmailAccount(account_id="box")
    assert [sending._why(exc) for exc in (
        MailboxUnavailable(account, "BYE"), ServerRefused("NO [SERVERBUG] broken"),
        OSError("reset"), ValueError("x"))] == [
        "the mail server was not available", "the mail server refused it",
        "the connection to the mail server failed", "an internal error"]
