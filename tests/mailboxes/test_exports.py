"""Bulk exports (EmailEngine's ``/export`` routes) against real Dovecot, PostgreSQL and Redis:
the job run by a real rq worker, the file downloaded and unpacked, every message in range
there once as ``GET .../message/{id}`` shows it; filters, limits, the sweep (stale exports,
lost jobs, expiry), failures in words, and other tenants kept out."""

from __future__ import annotations

import base64
import gzip
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rq import SimpleWorker

from accounts import services
from mailboxes import exports
from mailboxes.command_pool import pool
from mailboxes.models import Export, ExportChunk
from mailboxes.sync.account import sync_account
from tests import asgi_calls
from tests.base import wait_for
from tests.mailboxes.helpers import events_of, open_session
from tests.mailboxes.rq_workers import kill, rqworker
from tests.servers import seed
from tests.servers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/v1/account/box/export"
RANGE = {"startDate": "2024-02-01T00:00:00Z", "endDate": "2024-04-01T00:00:00Z"}
BIG_BODY = "Long line of a large message.\n" * 4000  # about 120 KB


def _at(month: int, day: int) -> datetime:
    return datetime(2024, month, day, 9, 30, tzinfo=UTC)


@pytest.fixture
def inbox_messages():
    return {
        "january": seed.make_message(subject="January", date=_at(1, 10)),
        "february": seed.make_message(
            subject="February", date=_at(2, 10), body="Invoice attached.\n",
            attachments=[("invoice.pdf", seed.tiny_pdf(), "application/pdf")]),
        "march": seed.make_message(subject="March", date=_at(3, 10), body=BIG_BODY,
                                   html="<p>March in HTML</p>"),
        "april": seed.make_message(subject="April", date=_at(4, 10)),
    }


@pytest.fixture
def before_sync():
    def other_folders(mail_user, uids):
        seed.seed_mailbox(mail_user, folder="Archive",
                          messages=[seed.make_message(subject="Archived", date=_at(2, 15))])
        seed.seed_mailbox(mail_user, folder="Junk",
                          messages=[seed.make_message(subject="Spam", date=_at(2, 20))])
    return other_folders


def work_export_queue() -> None:
    """Run the ``export`` rq queue for real, in this process, until it is empty."""
    queue = exports._queue()
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def create(client, **body):
    response = client.post(URL, {**RANGE, **body}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["exportId"]


def status_of(client, export_id: str) -> dict:
    response = client.get(f"{URL}/{export_id}")
    assert response.status_code == 200, response.json()
    return response.json()


def lines_of(client, export_id: str) -> list[dict]:
    response = client.get(f"{URL}/{export_id}/download")
    assert response.status_code == 200, response.content
    packed = b"".join(response.streaming_content)
    return [json.loads(line) for line in gzip.decompress(packed).decode().splitlines()]


def by_subject(lines: list[dict]) -> dict[str, dict]:
    subjects = [line["subject"] for line in lines]
    assert len(subjects) == len(set(subjects)), subjects
    return {line["subject"]: line for line in lines}


def test_export_holds_every_message_in_range_once_as_the_message_route_shows_it(
        alice, synced, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_SIZE", 512)  # a file of many chunk rows
    response = alice.client.post(URL, RANGE, format="json")
    assert response.status_code == 200, response.json()
    created = response.json()
    assert re.fullmatch(r"exp_[0-9a-f]{24}", created["exportId"])
    assert created["status"] == "queued"
    export_id = created["exportId"]
    queued = status_of(alice.client, export_id)
    assert queued["status"] == "queued"
    assert "phase" not in queued
    assert queued["error"] is None
    not_ready = alice.client.get(f"{URL}/{export_id}/download")
    assert not_ready.status_code == 400
    assert not_ready.json()["code"] == "ExportNotReady"

    work_export_queue()

    done = status_of(alice.client, export_id)
    assert done["status"] == "completed"
    assert done["phase"] == "complete"
    assert done["startDate"] == "2024-02-01T00:00:00.000Z"  # EmailEngine's toISOString
    assert done["folders"] == []
    download = alice.client.get(f"{URL}/{export_id}/download")
    assert download["Content-Type"] == "application/gzip"
    assert download["Content-Disposition"] == f'attachment; filename="{export_id}.ndjson.gz"'
    packed = b"".join(download.streaming_content)
    assert int(download["Content-Length"]) == len(packed)
    ndjson = gzip.decompress(packed)
    lines = [json.loads(line) for line in ndjson.decode().splitlines()]
    found = by_subject(lines)
    # January and April are out of range; Junk is left out unless asked for.
    assert sorted(found) == ["Archived", "February", "March"]
    assert ExportChunk.objects.filter(export__export_id=export_id).count() > 1
    for line in lines:
        shown = alice.client.get(f"/v1/account/box/message/{line['id']}").json()
        assert line == shown
    assert found["Archived"]["path"] == "Archive"
    assert found["March"]["text"]["html"].strip() == "<p>March in HTML</p>"
    assert "content" not in found["February"]["attachments"][0]
    # INBOX, Archive, Drafts, Sent: every folder but Junk and Trash.
    assert done["progress"] == {"foldersScanned": 4, "foldersTotal": 4, "messagesQueued": 3,
                                "messagesExported": 3, "messagesSkipped": 0,
                                "bytesWritten": len(ndjson)}
    [event] = events_of(synced.account, "exportCompleted")
    assert event.data["exportId"] == export_id
    assert event.data["messagesExported"] == 3
    assert event.data["bytesWritten"] == len(ndjson)
    assert event.data["expiresAt"] == done["expiresAt"]


def test_the_job_reads_its_index_rows_a_batch_at_a_time(alice, synced):
    """The rows an export writes are read in one query per batch, not one per message: the
    message table is read once per folder (the range) and once per batch."""
    export_id = create(alice.client)  # INBOX's February and March, Archive's one
    statements = []

    def record(execute, sql, params, many, context):  # every statement, reconnects included
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):  # the job itself, in this thread
        assert exports.run_export(Export.objects.get(export_id=export_id).pk) == "completed"
    assert status_of(alice.client, export_id)["progress"]["messagesExported"] == 3
    reads = [sql for sql in statements
             if sql.startswith("SELECT") and 'FROM "mailboxes_message"' in sql]
    assert len(reads) == len(exports.resolve_folders(synced.account, [])) + 1, reads


def test_the_download_under_asgi_is_the_same_file_chunk_by_chunk(alice, synced, monkeypatch):
    """What the web server runs: each chunk row read on Django's sync thread, streamed."""
    from emailapi.asgi import application

    monkeypatch.setattr(exports, "CHUNK_SIZE", 256)
    export_id = create(alice.client)
    work_export_queue()
    assert ExportChunk.objects.filter(export__export_id=export_id).count() > 2
    wsgi = b"".join(alice.client.get(f"{URL}/{export_id}/download").streaming_content)
    headers = [(b"authorization", f"Bearer {alice.token}".encode())]

    async def main():
        return await asgi_calls.call(application, "GET", f"{URL}/{export_id}/download", "", b"",
                                     headers)

    status, answer_headers, body = asgi_calls.run(main)
    assert status == 200
    assert answer_headers["content-type"] == "application/gzip"
    assert body == wsgi
    assert sorted(by_subject([json.loads(line) for line in gzip.decompress(body).splitlines()])) \
        == ["Archived", "February", "March"]


def test_an_export_deleted_during_its_download_cuts_the_answer_short(alice, synced, monkeypatch):
    """The chunks missing once the export is gone are never sent as empty pieces of a whole
    file: the stream stops, short of the Content-Length it promised."""
    monkeypatch.setattr(exports, "CHUNK_SIZE", 256)
    export_id = create(alice.client)
    work_export_queue()
    download = alice.client.get(f"{URL}/{export_id}/download")
    promised = int(download["Content-Length"])
    chunks = iter(download.streaming_content)
    first = next(chunks)
    assert 0 < len(first) < promised
    assert alice.client.delete(f"{URL}/{export_id}").status_code == 200
    with pytest.raises(exports.ExportVanished):
        next(chunks)


def test_folders_by_path_or_special_use_and_text_options(alice, synced):
    archive = create(alice.client, folders=["\\Archive"])
    inbox = create(alice.client, folders="INBOX", textType="plain", maxBytes=4)
    work_export_queue()
    assert list(by_subject(lines_of(alice.client, archive))) == ["Archived"]
    assert status_of(alice.client, archive)["folders"] == ["\\Archive"]
    found = by_subject(lines_of(alice.client, inbox))
    assert sorted(found) == ["February", "March"]
    assert found["March"]["text"]["plain"] == "Long"
    assert found["March"]["text"]["hasMore"] is True
    assert found["March"]["text"]["html"] is None
    junk = create(alice.client, folders=["Junk", "Nowhere"])
    work_export_queue()
    assert list(by_subject(lines_of(alice.client, junk))) == ["Spam"]
    # A folder the account does not have is left out, as EmailEngine does.
    assert status_of(alice.client, junk)["progress"]["foldersTotal"] == 1


def test_attachments_included_and_messages_over_the_size_limit_skipped(alice, synced, settings):
    settings.EXPORT_MAX_MESSAGE_SIZE = 50_000  # March (about 120 KB) is over it
    export_id = create(alice.client, folders=["INBOX"], includeAttachments=True)
    work_export_queue()
    found = by_subject(lines_of(alice.client, export_id))
    assert sorted(found) == ["February"]
    [attachment] = found["February"]["attachments"]
    assert base64.b64decode(attachment["content"]) == seed.tiny_pdf()
    progress = status_of(alice.client, export_id)["progress"]
    assert progress["messagesQueued"] == 2
    assert progress["messagesExported"] == 1
    assert progress["messagesSkipped"] == 1


def test_is_encrypted_is_false_queued_and_completed_and_the_stored_file_is_plain_gzip(
        alice, synced):
    """EmailEngine's isEncrypted, answered truthfully: our file is not encrypted at rest."""
    export_id = create(alice.client)
    assert status_of(alice.client, export_id)["isEncrypted"] is False
    work_export_queue()
    done = status_of(alice.client, export_id)
    assert (done["status"], done["isEncrypted"]) == ("completed", False)
    export = Export.objects.get(export_id=export_id)
    stored = b"".join(bytes(chunk.data) for chunk in
                      ExportChunk.objects.filter(export=export).order_by("seq"))
    assert b"February" in gzip.decompress(stored)


def test_list_pages_newest_first_delete_and_the_concurrency_limit(alice, synced, settings):
    settings.EXPORT_MAX_CONCURRENT = 2
    first = create(alice.client)
    second = create(alice.client)
    refused = alice.client.post(URL, RANGE, format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "TooManyExports"
    assert Export.objects.count() == 2
    page = alice.client.get("/v1/account/box/exports", {"pageSize": 1}).json()
    assert page["total"] == 2
    assert page["pages"] == 2
    assert page["page"] == 0
    assert [e["exportId"] for e in page["exports"]] == [second]
    assert set(page["exports"][0]) == {"exportId", "status", "created", "expiresAt"}
    later = alice.client.get("/v1/account/box/exports", {"page": 1, "pageSize": 1}).json()
    assert [e["exportId"] for e in later["exports"]] == [first]

    deleted = alice.client.delete(f"{URL}/{second}")
    assert deleted.status_code == 200
    assert deleted.json() == {"deleted": True}
    for response in (alice.client.get(f"{URL}/{second}"), alice.client.delete(f"{URL}/{second}")):
        assert response.status_code == 404
        assert response.json()["code"] == "ExportNotFound"
    work_export_queue()  # the deleted one's job was cancelled; the other runs
    assert status_of(alice.client, first)["status"] == "completed"
    assert create(alice.client)  # room again: finished exports do not count


def test_another_tenants_export_is_not_found(alice, synced, outsider):
    export_id = create(alice.client)
    work_export_queue()
    for response in (outsider.client.get(f"{URL}/{export_id}"),
                     outsider.client.get(f"{URL}/{export_id}/download"),
                     outsider.client.delete(f"{URL}/{export_id}")):
        assert response.status_code == 404
        assert response.json()["code"] == "ExportNotFound"
    assert outsider.client.get("/v1/account/box/exports").json()["total"] == 0
    assert status_of(alice.client, export_id)["status"] == "completed"


@pytest.mark.parametrize("body", [
    {"endDate": "2024-04-01T00:00:00Z"},
    {**RANGE, "endDate": "2024-01-01T00:00:00Z"},
    {**RANGE, "textType": "pdf"},
    {**RANGE, "maxBytes": -1},
    {**RANGE, "folders": [""] * 1001},
    {**RANGE, "includeAttachments": "maybe"},
    {**RANGE, "format": "mbox"},
])
def test_bad_input_is_refused_in_words_and_creates_nothing(alice, synced, body):
    response = alice.client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "InputValidationError"
    assert response.json()["error"]
    assert Export.objects.count() == 0
    bad_page = alice.client.get("/v1/account/box/exports", {"pageSize": 0})
    assert bad_page.status_code == 400


def test_an_export_whose_login_fails_ends_failed_with_exportFailed(alice, synced, dovecot,
                                                                    mail_user):
    export_id = create(alice.client)
    # Changed by its owner. Of another length than the old one: a same-length password written
    # within the second the user was made was seen to leave the old one working (2 runs in 4).
    dovecot.add_user(mail_user.username, "changed-by-its-owner-" + "x" * 20)
    pool.close_all()  # the next session logs in again, with the old password
    work_export_queue()
    failed = status_of(alice.client, export_id)
    assert failed["status"] == "failed"
    assert "authentication failed" in failed["error"]
    assert "Traceback" not in failed["error"]
    assert "Error(" not in failed["error"]
    assert ExportChunk.objects.count() == 0
    not_ready = alice.client.get(f"{URL}/{export_id}/download")
    assert not_ready.status_code == 400
    [event] = events_of(synced.account, "exportFailed")
    assert event.data["exportId"] == export_id
    assert event.data["error"] == failed["error"]
    assert event.data["errorCode"] == "AuthenticationFails"
    assert event.data["phase"] == "exporting"
    assert event.data["messagesQueued"] == 3


def test_a_processing_export_whose_worker_died_is_failed_by_the_sweep(alice, synced, settings):
    settings.EXPORT_STALE_AFTER = 60
    export_id = create(alice.client)
    # What a worker killed mid-export leaves: processing, no progress since.
    claimed_at = timezone.now() - timedelta(seconds=61)
    Export.objects.filter(export_id=export_id).update(
        status="processing", phase="exporting", started_at=claimed_at, heartbeat_at=claimed_at)
    fresh = create(alice.client)
    Export.objects.filter(export_id=fresh).update(status="processing", phase="indexing",
                                                  heartbeat_at=timezone.now())
    assert exports.sweep()["stale"] == 1
    stale = status_of(alice.client, export_id)
    assert stale["status"] == "failed"
    assert "worker stopped" in stale["error"]
    assert status_of(alice.client, fresh)["status"] == "processing"
    [event] = events_of(synced.account, "exportFailed")
    assert event.data["exportId"] == export_id
    assert event.data["phase"] == "exporting"


def test_a_queued_export_whose_job_was_lost_is_enqueued_again(alice, synced):
    export_id = create(alice.client)
    exports._queue().empty()  # the job lost (a Redis flush)
    Export.objects.filter(export_id=export_id).update(
        created_at=timezone.now() - timedelta(seconds=30))
    assert exports.sweep()["requeued"] == 1
    assert exports.sweep()["requeued"] == 0  # its job is waiting now
    work_export_queue()
    assert status_of(alice.client, export_id)["status"] == "completed"


def test_an_expired_export_is_gone_and_the_sweep_deletes_its_file(alice, synced):
    export_id = create(alice.client)
    work_export_queue()
    assert ExportChunk.objects.filter(export__export_id=export_id).exists()
    Export.objects.filter(export_id=export_id).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    response = alice.client.get(f"{URL}/{export_id}")
    assert response.status_code == 404
    assert alice.client.get("/v1/account/box/exports").json()["total"] == 0
    assert exports.sweep()["expired"] == 1
    assert not Export.objects.filter(export_id=export_id).exists()
    assert ExportChunk.objects.count() == 0


def test_a_real_worker_killed_mid_export_leaves_it_to_the_sweep(alice, mail_user, settings):
    """A real ``rqworker`` process SIGKILLed while the mail server has gone quiet in the middle
    of an export: the export stays ``processing`` (nothing else can tell), and once its
    heartbeat is older than ``EXPORT_STALE_AFTER`` the sweep fails it, in words."""
    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Held", date=_at(2, 2))])
    with TcpProxy(mail_user.imap_port) as proxy:
        imap = {**mail_user.imap_settings(secure=False), "port": proxy.port,
                "tls": {"rejectUnauthorized": False}}
        account = services.register_account(alice.tenant, {"account": "box", "imap": imap})
        session = open_session(account)
        assert sync_account(session, account).complete
        session.client.logout()
        export_id = create(alice.client)
        proxy.hold()  # the job's IMAP login will wait for an answer that does not come
        try:
            with rqworker(settings, "export") as victim:
                wait_for(lambda: Export.objects.filter(export_id=export_id, phase="exporting")
                         .exists())
                wait_for(lambda: proxy.held_bytes)  # the server's greeting, held
                kill(victim)
        finally:
            proxy.release()

    assert status_of(alice.client, export_id)["status"] == "processing"
    assert exports.sweep()["stale"] == 0, "not before its heartbeat is stale"
    Export.objects.filter(export_id=export_id).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.EXPORT_STALE_AFTER + 1))
    assert exports.sweep()["stale"] == 1
    failed = status_of(alice.client, export_id)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("Export interrupted: its worker stopped")
    [event] = events_of(account, "exportFailed")
    assert event.data["exportId"] == export_id

