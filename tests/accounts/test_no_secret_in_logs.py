"""No log line, at any level, carries a mailbox password."""

import logging

import pytest

from tests.base import account_payload

pytestmark = pytest.mark.django_db


def test_registration_and_verification_log_no_password(alice, mail_user, caplog):
    caplog.set_level(logging.DEBUG)
    body = account_payload()
    body["imap"] = mail_user.imap_settings(secure=True)
    alice.client.post("/v1/account", body, format="json")
    alice.client.put("/v1/account/sales", {"imap": {"auth": {"pass": "Changed-Secret-1"}}},
                     format="json")
    alice.client.post("/v1/verifyAccount", {"imap": mail_user.imap_settings(secure=True)},
                      format="json")
    wrong = mail_user.imap_settings(secure=True)
    wrong["auth"]["pass"] = "Wrong-Secret-2"
    alice.client.post("/v1/verifyAccount", {"imap": wrong}, format="json")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "expected some debug logging to inspect"
    for secret in (mail_user.password, "Changed-Secret-1", "Wrong-Secret-2", "smtp-Secret-456"):
        assert secret not in logged
