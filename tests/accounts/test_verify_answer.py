"""EmailEngine's ``statusCode`` on verifyAccount checks (``accounts.api.verify_answer``) and
``noInferiors`` on its folders (``mailboxes.verify``): pure functions, no servers."""

from __future__ import annotations

import pytest

from accounts.api.verify_answer import status_code, with_status_codes
from mailboxes.imap.session import FolderListing
from mailboxes.verify import _mailbox


@pytest.mark.parametrize("check, expected", [
    ({"success": True}, None),
    ({"success": False, "code": "AUTHENTICATIONFAILED", "emailapiCode": "AuthenticationFailed"},
     401),
    ({"success": False, "code": "EAUTH", "emailapiCode": "AuthenticationFailed"}, 401),
    ({"success": False, "code": "HostNotAllowed", "emailapiCode": "HostNotAllowed"}, 403),
    ({"success": False, "code": "ETIMEDOUT", "emailapiCode": "Timeout"}, 504),
    ({"success": False, "code": "ECONNECTION", "emailapiCode": "ConnectionError"}, 502),
    ({"success": False, "code": "ETLS", "emailapiCode": "TLSError"}, 502),
    ({"success": False, "code": "ImapError"}, 502),  # a failed LIST: no emailapiCode
])
def test_status_code_by_kind_of_failure(check, expected):
    assert status_code(check) == expected


def test_only_failed_checks_get_a_status_code():
    result = with_status_codes({"imap": {"success": True},
                                "smtp": {"success": False, "emailapiCode": "Timeout"},
                                "mailboxes": []})
    assert result == {"imap": {"success": True},
                      "smtp": {"success": False, "emailapiCode": "Timeout", "statusCode": 504},
                      "mailboxes": []}


def _listing(*flags: str) -> FolderListing:
    return FolderListing(path="Top", name="Top", delimiter="/", parent_path="", flags=flags,
                         special_use="", subscribed=True, no_select=False)


@pytest.mark.parametrize("flags, expected", [
    (("\\Noinferiors",), True), (("\\NoInferiors", "\\HasNoChildren"), True),
    (("\\HasNoChildren",), False), ((), False),
])
def test_no_inferiors_follows_the_servers_flag(flags, expected):
    assert _mailbox(_listing(*flags))["noInferiors"] is expected
