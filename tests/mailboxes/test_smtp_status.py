"""EmailEngine's shapes of a send's SMTP outcome (``mailboxes.smtp_status``): pure."""

from __future__ import annotations

from datetime import UTC, datetime

from mailboxes import smtp_status

REFUSED = {"error": "550 5.7.1 Relaying denied", "code": "SmtpRefused", "responseCode": 550,
           "command": "RCPT TO"}
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_created_is_milliseconds_since_the_epoch_from_a_datetime_or_our_iso_text():
    assert smtp_status.epoch_ms(WHEN) == 1767323045678
    assert smtp_status.epoch_ms("2026-01-02T03:04:05.678000Z") == 1767323045678
    assert smtp_status.epoch_ms("not a time") is None
    assert smtp_status.epoch_ms(None) is None


def test_progress_error_renames_ours_and_names_the_routing_only_when_known():
    assert smtp_status.progress_error(REFUSED) == {
        "message": "550 5.7.1 Relaying denied", "code": "SmtpRefused", "statusCode": 550}
    routed = smtp_status.progress_error({**REFUSED, "networkRouting": {"localAddress": "::1"}})
    assert routed["networkRouting"] == {"localAddress": "::1"}
    assert smtp_status.progress_error(None) is None


def test_an_error_entry_has_every_gateway_error_entry_field():
    entry = smtp_status.error_entry(REFUSED, WHEN)
    assert entry == {"created": 1767323045678, "status": "error",
                     "response": "550 5.7.1 Relaying denied",
                     "description": "550 5.7.1 Relaying denied", "responseCode": 550,
                     "code": "SmtpRefused", "command": "RCPT TO", "networkRouting": None}


def test_an_ok_entry_reads_the_reply_code_of_the_servers_answer():
    entry = smtp_status.ok_entry("250 2.0.0 Ok: queued as 4F3A1", WHEN)
    assert entry["status"] == "ok"
    assert entry["responseCode"] == 250
    assert entry["command"] == "DATA"
    assert smtp_status.ok_entry("", WHEN)["responseCode"] is None
