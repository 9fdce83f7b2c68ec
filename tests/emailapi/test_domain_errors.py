"""Domain errors (``emailapi.lib.errors`` and each app's errors module) and the one map that
turns their kinds into HTTP statuses. Pure: no database, no Redis, no request."""

from __future__ import annotations

import inspect

import pytest

from accounts import errors as account_errors
from emailapi.api import error_shape
from emailapi.api import errors as api_errors
from emailapi.lib import errors as domain
from mailboxes import errors as mailbox_errors
from webhooks import errors as webhook_errors
from webhooks.api import stream_socket

APP_MODULES = (account_errors, mailbox_errors, webhook_errors)
# One code, two kinds on purpose (see ``mailboxes.errors``): 502 when the mail server failed
# or refused for its own reasons, 400 when it will never make that folder change.
# One condition seen from two sides: a route's own thing missing (404) and a body naming one
# that is not there (400), under one code.
SHARED_CODES = {"ServerRefused": {mailbox_errors.ServerRefused, mailbox_errors.FolderChangeRefused},
                "OAuth2AppNotFound": {account_errors.OAuth2AppNotFound,
                                      account_errors.UnknownOAuth2App},
                "GatewayNotFound": {mailbox_errors.GatewayNotFound,
                                    mailbox_errors.UnknownGateway}}


def _classes(module) -> list[type[domain.DomainError]]:
    return [cls for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__]


def test_each_kind_has_its_status():
    assert api_errors.STATUS_OF_KIND == {
        domain.Invalid: 400, domain.PaymentRequired: 402, domain.Forbidden: 403,
        domain.NotFound: 404, domain.Conflict: 409, domain.Gone: 410, domain.TooLarge: 413,
        domain.RateLimited: 429, domain.Unimplemented: 501, domain.UpstreamFailed: 502,
        domain.Unavailable: 503,
    }
    assert set(api_errors.STATUS_OF_KIND) == set(domain.KINDS)


@pytest.mark.parametrize("module", APP_MODULES, ids=lambda m: m.__name__)
def test_every_app_error_is_a_domain_error_of_one_kind_with_a_code(module):
    classes = _classes(module)
    assert classes, module.__name__
    for cls in classes:
        assert issubclass(cls, domain.DomainError), cls
        assert domain.kind_of(cls) is not None, cls
        assert cls.code, cls


@pytest.mark.parametrize("module", APP_MODULES, ids=lambda m: m.__name__)
def test_each_code_belongs_to_one_class(module):
    owners: dict[str, set[type]] = {}
    for cls in _classes(module):
        if "code" in vars(cls):  # a subclass that keeps its parent's code is not a new one
            owners.setdefault(cls.code, set()).add(cls)
    shared = {code: classes for code, classes in owners.items() if len(classes) > 1}
    assert shared == {code: classes for code, classes in SHARED_CODES.items()
                      if code in owners}


def test_a_kind_comes_from_the_class_hierarchy():
    assert domain.kind_of(mailbox_errors.NoRecipients) is domain.Invalid
    assert domain.kind_of(mailbox_errors.NoRecipients("to", "none")) is domain.Invalid
    assert domain.kind_of(domain.DomainError("no kind")) is None


def test_a_domain_error_becomes_the_api_error_body():
    response = api_errors.exception_handler(account_errors.PlanLimit(3, 3), {})
    assert response.status_code == 403
    assert response.data == {
        "statusCode": 403, "error": "Forbidden",
        "message": "Your plan allows 3 mailboxes; remove one or upgrade the plan.",
        "code": "PlanLimit", "emailapiCode": "PlanLimit", "details": {"limit": 3, "count": 3}}
    assert "Retry-After" not in response


def test_empty_details_are_left_out():
    response = api_errors.exception_handler(account_errors.AccountNotFound("a"), {})
    assert response.data == {"statusCode": 404, "error": "Not Found",
                             "message": "Account 'a' not found", "code": "AccountNotFound",
                             "emailapiCode": "AccountNotFound"}


def test_unavailable_says_when_to_retry_when_it_knows():
    class Busy(domain.Unavailable):
        code = "Busy"

    assert api_errors.exception_handler(Busy("later", retry_after=7), {})["Retry-After"] == "7"
    assert "Retry-After" not in api_errors.exception_handler(Busy("later"), {})


def test_a_domain_error_without_a_kind_is_an_internal_error():
    response = api_errors.exception_handler(domain.DomainError("oops"), {})
    assert response.status_code == 500
    assert response.data["code"] == "InternalError"


def test_the_websocket_closes_with_4000_plus_the_status():
    refused = stream_socket._refused(webhook_errors.CursorExpired())
    assert refused.close_code == 4410
    assert refused.body == {"statusCode": 410, "error": "Gone",
                            "message": "Events after this cursor were pruned: resynchronise",
                            "code": "CursorExpired", "emailapiCode": "CursorExpired"}


def test_emailengines_code_goes_out_as_code_and_ours_stays_as_emailapi_code():
    response = api_errors.exception_handler(mailbox_errors.MailboxNotFound("Nope"), {})
    assert (response.data["code"], response.data["emailapiCode"]) == \
        ("FolderNotFound", "MailboxNotFound")


def test_a_missing_reference_is_emailengines_reference_not_found():
    response = api_errors.exception_handler(mailbox_errors.ReferenceNotFound("gone"), {})
    assert (response.status_code, response.data["code"], response.data["emailapiCode"]) == \
        (404, "ReferenceNotFound", "MessageNotFound")


@pytest.mark.parametrize("module", APP_MODULES, ids=lambda m: m.__name__)
def test_every_emailengine_code_is_a_name(module):
    for cls in _classes(module):
        assert cls.ee_code == "" or cls.ee_code.isidentifier(), cls


def test_per_field_details_become_joi_fields():
    details = {"imap.auth.pass": ["Required", "Too short"], "to[0].address": ["Bad"]}
    assert error_shape.fields_of(details) == [
        {"message": "imap.auth.pass: Required", "key": "pass"},
        {"message": "imap.auth.pass: Too short", "key": "pass"},
        {"message": "to[0].address: Bad", "key": "address"}]


def test_other_details_give_no_fields():
    assert error_shape.fields_of({"limit": 3, "count": 3}) is None


def test_the_reason_phrase_is_nodes():
    assert [error_shape.reason_phrase(s) for s in (400, 404, 413, 429, 503)] == [
        "Bad Request", "Not Found", "Payload Too Large", "Too Many Requests",
        "Service Unavailable"]
