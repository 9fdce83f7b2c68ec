"""No 5xx from input: the cases the fuzz (test_fuzz_openapi.py) found first, each on its own,
through the ASGI application the web server runs, and the WebSocket stream through the real
server. Each is a 400 (or the stream's own refusal) naming what was wrong."""

from __future__ import annotations

import gc
import json

import pytest

from accounts import plans
from mailboxes.command_pool import pool
from mailboxes.sync.account import sync_account
from tests.emailapi.test_api_asgi import call
from tests.mailboxes.helpers import open_session, register
from tests.servers import seed
from tests.webhooks.stream_clients import Daphne, WebSocket

pytestmark = pytest.mark.django_db(transaction=True)


def post(path: str, token: str, body: bytes):
    return call(path, token, "POST", body, [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())])


@pytest.fixture
def box(alice, mail_user):
    seed.seed_mailbox(mail_user, messages=[seed.make_message()])
    account = register(alice.tenant, mail_user)
    session = open_session(account)
    sync_account(session, account)
    session.client.logout()
    yield account
    pool.close_all()


def _error(answer) -> dict:
    status, headers, content = answer
    body = json.loads(content)
    assert body["statusCode"] == status
    assert headers["content-type"] == "application/json"
    return body


def test_a_page_beyond_the_integer_range_is_a_400(alice, box):
    for path in ("/v1/account/box/messages?path=INBOX&page=99999999999999999999",
                 "/v1/account/box/threads?path=INBOX&page=9223372036854775807",
                 "/v1/accounts?page=99999999999999999999"):
        answer = call(path, alice.token)
        assert answer[0] == 400, (path, answer)
        assert _error(answer)["details"]["page"], path
    assert call("/v1/account/box/messages?path=INBOX&page=10000000", alice.token)[0] == 200


def test_nul_in_a_path_or_query_is_a_400(alice, box):
    # A path as the server hands it over (percent-decoded), a query as sent.
    for path, where in [("/v1/account/a\x00b", "path"), ("/v1/account/box/thread/t\x00", "path"),
                        ("/dashboard/mailboxes/a\x00b", "path"),
                        ("/v1/account/box/messages?path=IN%00BOX", "query"),
                        ("/v1/accounts?%00=1", "query")]:
        answer = call(path, alice.token)
        assert answer[0] == 400, (path, answer)
        assert _error(answer)["details"] == {
            where: [f"NUL characters are not allowed in the URL's {where}"]}, path


def test_nul_and_lone_surrogates_in_json_are_a_400_naming_the_field(alice, box):
    cases = [(b'{"name": "a\\u0000b"}', "name", "NUL"),
             (b'{"name": "x", "scopes": ["api", "\\ud800"]}', "scopes[1]", "surrogate"),
             (b'{"name": "x", "\\u0000": 1}', "\\x00", "NUL")]
    for body, field, problem in cases:
        answer = post("/v1/token", alice.token, body)
        assert answer[0] == 400, (body, answer)
        error = _error(answer)
        assert error["code"] == "InputValidationError"
        assert problem in error["details"][field][0]
    answer = post("/v1/account/box/mailbox", alice.token, b'{"path": "\\ud800"}')
    assert answer[0] == 400
    assert "path" in _error(answer)["details"]


def test_json_nested_100000_deep_is_a_400(alice):
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                 b'{"search": ' + b'{"not": ' * 40 + b"{}" + b"}" * 41):
        answer = post("/v1/token", alice.token, body)
        assert answer[0] == 400, answer
        assert _error(answer) == {"statusCode": 400, "error": "Bad Request",
                                  "message": "JSON nested deeper than 32 levels",
                                  "code": "InvalidJSON", "emailapiCode": "InvalidJSON"}


def _descend(levels: int) -> None:
    if levels:
        _descend(levels - 1)


def test_a_deep_body_is_refused_before_the_decoder_descends_into_it(alice):
    """Each level the decoder descends allocates a list, so the garbage collector runs inside
    the descent, and the finalizers it calls there have no stack left: they fail as "Exception
    ignored" and their cleanup never happens. A collection after every allocation finds out
    whether any ran with less than 200 frames of stack to spare."""
    starved = []

    def probe(phase, info):
        if phase == "start":
            try:
                _descend(200)
            except RecursionError:
                starved.append(info["generation"])

    thresholds = gc.get_threshold()
    gc.callbacks.append(probe)
    gc.set_threshold(1, 10**9, 10**9)  # the youngest generation only, but after every allocation
    try:
        answer = post("/v1/token", alice.token, b"[" * 100_000 + b"]" * 100_000)
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(probe)
    assert answer[0] == 400
    assert not starved, f"{len(starved)} collections ran with the stack nearly exhausted"


def test_a_mail_header_with_a_unicode_line_break_is_a_400(alice, box):
    for text in ("a\u2028b", "a\x85b", "a\x0cb"):
        body = json.dumps({"path": "INBOX", "from": {"address": "me@example.test"},
                           "subject": text}).encode()
        answer = post("/v1/account/box/message", alice.token, body)
        assert answer[0] == 400, answer
        assert _error(answer)["details"] == {"subject": ["Line breaks are not allowed"]}


def test_a_folder_path_with_a_trailing_delimiter_creates_the_folder(alice, box):
    answer = post("/v1/account/box/mailbox", alice.token, b'{"path": "Fuzz/"}')
    assert answer[0] == 200
    assert json.loads(answer[2]) == {"path": "Fuzz", "created": True}
    for path in (b'"/"', b'"a//b"', b'"//"', b'["a", ""]'):
        status = post("/v1/account/box/mailbox", alice.token, b'{"path": %s}' % path)[0]
        assert status < 500, (path, status)


def test_a_webhook_header_value_an_http_header_cannot_carry_is_a_400(alice, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    for value, status in [("a\u2028b", 400), ("\U0001f600", 400), ("a\x0bb", 400),
                          ("a\x85b", 400), ("é and\ttab", 200)]:
        body = json.dumps({"url": "http://127.0.0.1:9/hook", "events": ["messageNew"],
                           "headers": {"X-Test": value}}).encode()
        answer = post("/v1/webhooks", alice.token, body)
        assert answer[0] == status, (value, answer)


def test_credentials_beyond_ascii_sign_in_with_sasl_plain(alice, dovecot, smtp_server):
    """imaplib and smtplib send only ASCII credentials (a UnicodeEncodeError: verifyAccount,
    every read of such a mailbox and every send were 500s); AUTH PLAIN carries UTF-8."""
    user = dovecot.add_user(password="pässwörd-Ω-\U0001f600")
    smtp_server.add_user(user.username, user.password)
    imap = {**user.imap_settings(), "tls": {"rejectUnauthorized": False}}
    smtp = smtp_server.smtp_settings(user.username, user.password)
    smtp["tls"] = {"rejectUnauthorized": False}
    answer = post("/v1/verifyAccount", alice.token, json.dumps({"imap": imap, "smtp": smtp})
                  .encode())
    assert answer[0] == 200, answer
    result = json.loads(answer[2])
    assert result["imap"]["success"], result
    assert result["smtp"]["success"], result
    for name in ("é", "a\u2028b"):
        imap["auth"]["user"] = smtp["auth"]["user"] = name
        answer = post("/v1/verifyAccount", alice.token,
                      json.dumps({"imap": imap, "smtp": smtp}).encode())
        assert answer[0] == 200, answer
        result = json.loads(answer[2])
        assert result["imap"]["emailapiCode"] == "AuthenticationFailed"
        assert result["smtp"]["emailapiCode"] == "AuthenticationFailed"
    pool.close_all()


def test_a_host_name_that_cannot_be_looked_up_is_a_400(alice):
    for host in ("a" * 64 + ".example.test", "a..b", ".a", "x" * 250 + ".test", "1:2"):
        server = {"host": host, "port": 993, "secure": True, "auth": {"user": "u", "pass": "p"}}
        answer = post("/v1/verifyAccount", alice.token, json.dumps({"imap": server}).encode())
        assert answer[0] == 400, (host, answer)
        assert _error(answer)["details"] == {"imap.host": ["Not a valid host name"]}, host
    for host in ("[::1]", "::1", "127.0.0.1", "mail.example.test.", "under_score.test"):
        server = {"host": host, "port": 993, "secure": True, "auth": {"user": "u", "pass": "p"}}
        body = json.dumps({"account": "h", "imap": server}).encode()
        assert post("/v1/account", alice.token, body)[0] == 200, host
        call("/v1/account/h", alice.token, "DELETE")


def test_a_connect_link_with_non_ascii_data_or_signature_is_refused_as_invalid(alice):
    for query in ("data=%FF&sig=%FF", "data=abc&sig=%C3%A9", "data=%C3%A9&sig=abc"):
        status, _, content = call(f"/connect?{query}", None)
        assert status == 400, (query, status)
        assert b"This link is not valid." in content, (query, status)


@pytest.fixture(scope="module")
def web(django_db_setup):
    from django.conf import settings

    server = Daphne(settings)
    yield server
    server.stop()


def test_a_websocket_stream_of_an_expired_trial_says_402_and_closes_4402(alice, web):
    plans.expire(alice.tenant)
    client = WebSocket(web.port, f"/v1/stream?access_token={alice.token}")
    first = client.receive()
    assert first["code"] == "TrialExpired", first
    assert first["statusCode"] == 402, first
    assert client.receive() is None
    assert client.close_code == 4402
    client.close()
    assert "could not open a WebSocket stream" not in web.log()


def test_a_websocket_to_a_path_without_one_is_declined_not_a_500(web):
    for path in ("/v1/streamx", "/nope"):
        with pytest.raises(AssertionError, match="403"):
            WebSocket(web.port, path)
    assert "No route found" not in web.log()


def test_more_query_parameters_than_django_parses_is_a_400(alice, box):
    """Django stops at ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` (1,000) with ``TooManyFieldsSent``,
    which DRF passes on as it is: every route answered 500 to a query of 1,001 parameters."""
    many = "&".join(f"k{n}=v" for n in range(1001))
    for path in (f"/v1/accounts?{many}", f"/v1/account/box/messages?path=INBOX&{many}",
                 f"/v1/stream?{many}"):
        answer = call(path, alice.token)
        assert answer[0] == 400, (path, answer)
        assert _error(answer)["code"] == "InputValidationError", path
    searched = post(f"/v1/account/box/search?path=INBOX&{many}", alice.token, b'{"search": {}}')
    assert searched[0] == 400, searched
    form = "&".join(f"k{n}=v" for n in range(1001)).encode()
    posted = call("/v1/account", alice.token, "POST", form, [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(form)).encode())])
    assert posted[0] in (400, 415), posted
