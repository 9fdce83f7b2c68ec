"""EmailEngine's open and click tracking: ``trackOpens``, ``trackClicks``, ``trackingEnabled``
and ``baseUrl`` on submit (and the ``trackOpens``/``trackClicks`` settings as defaults), the
message sent through the recording SMTP server, its image (``/open.gif``) and redirect
(``/redirect``) links followed as a reader's mail client would, and the ``trackOpen`` /
``trackClick`` events in the outbox and delivered as EmailEngine's webhooks."""

from __future__ import annotations

import base64
import email
import email.policy
import html as html_lib
import http.client
import re
import struct
import threading
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from asgiref.testing import ApplicationCommunicator

from accounts.models import EmailAccount
from mailboxes import tracking
from mailboxes.models import OutboxEntry
from tests import asgi_calls
from tests.base import wait_for
from tests.mailboxes.helpers import register
from tests.mailboxes.sending_helpers import b64, raw_message, sending_account, work_send_queue
from tests.webhooks import conftest as webhook_fixtures
from tests.webhooks.stream_clients import Daphne
from webhooks.models import Event

allow_private_webhooks = webhook_fixtures.allow_private_webhooks
webhook_receiver = webhook_fixtures.webhook_receiver
start_dispatcher = webhook_fixtures.start_dispatcher

pytestmark = pytest.mark.django_db

SUBMIT = "/v1/account/box/submit"
OFFER = "https://shop.example/offer?a=1&b=2"
TRACKED = {"from": {"address": "me@example.test"},
           "to": [{"name": "Ann", "address": "ann@example.test"}], "subject": "Offer",
           "text": f"See {OFFER}",
           "html": f'<html><body><p><a href="{html_lib.escape(OFFER)}">Offer</a> '
                   '<a href="mailto:help@example.test">Help</a></p></body></html>',
           "trackOpens": True, "trackClicks": True}
SRC = re.compile(r'<img src="([^"]*)"')
HREF = re.compile(r'<a href="([^"]*)"')
TRACK_EVENTS = ("trackOpen", "trackClick")


@pytest.fixture
def account(alice, smtp_user, smtp_server):
    smtp = {**smtp_server.smtp_settings(smtp_user.username, smtp_user.password),
            "tls": {"rejectUnauthorized": False}}
    return register(alice.tenant, smtp_user, "box", smtp=smtp, email="box@example.test")


def _html(raw: bytes) -> str | None:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("html",))
    return None if body is None else body.get_content()


def _queued_html(answer) -> str | None:
    assert answer.status_code == 200, answer.json()
    return _html(bytes(OutboxEntry.objects.get(queue_id=answer.json()["queueId"]).raw))


def _local(url: str) -> str:
    """A link of the message (as the HTML has it) as the test client fetches it."""
    parts = urlsplit(html_lib.unescape(url))
    assert parts.netloc == "testserver", url
    return f"{parts.path}?{parts.query}"


def _tracked(tenant) -> list[tuple[str, str, dict]]:
    return [(e.event, e.account_id, e.data) for e in
            Event.objects.filter(tenant=tenant, event__in=TRACK_EVENTS).order_by("created_at")]


def _links(html: str) -> tuple[str, str]:
    """The image's URL and the first link's, local."""
    src, = SRC.findall(html)
    return _local(src), _local(HREF.findall(html)[0])


@pytest.mark.django_db(transaction=True)  # the send queue's own transactions, as in rq
def test_a_sent_messages_image_and_link_record_an_open_and_a_click(
        alice, client, smtp_user, smtp_server):
    sending_account(alice.tenant, smtp_user, smtp_server)
    queued = alice.client.post(SUBMIT, TRACKED, format="json").json()
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0].message
    assert received.get_body(("plain",)).get_content().strip() == f"See {OFFER}"
    html = received.get_body(("html",)).get_content()
    assert HREF.findall(html)[1] == "mailto:help@example.test"
    assert html.rstrip().endswith('alt=""></body></html>')
    pixel_url, link_url = _links(html)

    pixel = client.get(pixel_url, HTTP_USER_AGENT="Reader/1", REMOTE_ADDR="127.0.0.5")
    assert pixel.status_code == 200
    assert pixel["Content-Type"] == "image/gif"
    assert "no-store" in pixel["Cache-Control"]
    assert pixel.content[:6] == b"GIF89a"
    assert struct.unpack("<HH", pixel.content[6:10]) == (1, 1)
    click = client.get(link_url, HTTP_USER_AGENT="Reader/1", REMOTE_ADDR="127.0.0.5")
    assert click.status_code == 302
    assert click["Location"] == OFFER

    reader = {"remoteAddress": "127.0.0.5", "userAgent": "Reader/1"}
    assert _tracked(alice.tenant) == [
        ("trackOpen", "box", {"messageId": queued["messageId"], **reader}),
        ("trackClick", "box", {"messageId": queued["messageId"], "url": OFFER, **reader})]
    client.get(pixel_url)  # every opening is one event, as in EmailEngine
    assert [name for name, _, _ in _tracked(alice.tenant)] == ["trackOpen", "trackClick",
                                                               "trackOpen"]


def _refused(response) -> dict:
    assert response.status_code == 403
    body = response.json()
    assert (body["statusCode"], body["error"]) == (403, "Forbidden")
    return body


def _swap(query: str, **values) -> str:
    params = {key: value[0] for key, value in parse_qs(query.split("?", 1)[1]).items()}
    params.update(values)
    return f"{query.split('?', 1)[0]}?{urlencode({k: v for k, v in params.items() if v})}"


def test_a_link_we_did_not_sign_is_403_and_records_nothing(alice, client, account):
    pixel_url, link_url = _links(_queued_html(alice.client.post(SUBMIT, TRACKED,
                                                                format="json")))
    for url in (pixel_url, link_url):
        sig = parse_qs(url.split("?", 1)[1])["sig"][0]
        changed = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
        assert _refused(client.get(_swap(url, sig=changed)))["code"] == "InvalidSignature"
        assert _refused(client.get(_swap(url, sig="")))["code"] == "InvalidLink"
    # The image's link is not a redirect link, nor the other way round.
    assert _refused(client.get("/redirect?" + pixel_url.split("?", 1)[1]))
    assert _refused(client.get("/open.gif?" + link_url.split("?", 1)[1]))
    assert _refused(client.get("/redirect"))
    assert _tracked(alice.tenant) == []


def test_another_tenant_cannot_make_a_link_for_itself(alice, bob, client, account, smtp_user):
    register(bob.tenant, smtp_user, "box")  # the same account id in another tenant
    pixel_url, _ = _links(_queued_html(alice.client.post(SUBMIT, TRACKED, format="json")))
    message_id = OutboxEntry.objects.get().message_id
    # Bob's tenant in the data, under the signature of Alice's link: the signature covers it.
    bobs = tracking.open_link("http://testserver", bob.tenant.pk, "box", message_id)
    forged = _swap(pixel_url, data=parse_qs(urlsplit(bobs).query)["data"][0])
    _refused(client.get(forged))
    assert _tracked(bob.tenant) == []
    assert client.get(pixel_url).status_code == 200  # Alice's own link: Alice's event
    assert [(name, account_id) for name, account_id, _ in _tracked(alice.tenant)] == [
        ("trackOpen", "box")]
    assert _tracked(bob.tenant) == []


def test_a_deleted_accounts_links_still_answer_and_record_nothing(alice, client, account):
    pixel_url, link_url = _links(_queued_html(alice.client.post(SUBMIT, TRACKED,
                                                                format="json")))
    EmailAccount.objects.filter(tenant=alice.tenant, account_id="box").delete()
    assert client.get(pixel_url).status_code == 200
    assert client.get(link_url)["Location"] == OFFER
    assert not Event.objects.filter(event__in=TRACK_EVENTS).exists()


def test_a_head_request_answers_and_records_nothing(alice, client, account):
    pixel_url, link_url = _links(_queued_html(alice.client.post(SUBMIT, TRACKED,
                                                                format="json")))
    assert client.head(pixel_url)["Content-Type"] == "image/gif"
    assert client.head(link_url)["Location"] == OFFER
    assert _tracked(alice.tenant) == []


def _served(client, pixel_url: str, link_url: str, address: str) -> None:
    """The image and the redirect, fetched from ``address``, answered as to any reader."""
    pixel = client.get(pixel_url, REMOTE_ADDR=address, HTTP_USER_AGENT="Scanner/1")
    assert pixel.status_code == 200
    assert pixel["Content-Type"] == "image/gif"
    assert pixel.content[:6] == b"GIF89a"
    click = client.get(link_url, REMOTE_ADDR=address, HTTP_USER_AGENT="Scanner/1")
    assert click.status_code == 302
    assert click["Location"] == OFFER


def test_googles_crawlers_get_the_image_and_the_redirect_and_record_nothing(
        alice, client, account):
    queued = alice.client.post(SUBMIT, TRACKED, format="json")
    pixel_url, link_url = _links(_queued_html(queued))
    for address in ("66.249.87.5", "2001:4860:4801:2008::1", "::ffff:74.125.148.1"):
        _served(client, pixel_url, link_url, address)
    assert _tracked(alice.tenant) == []
    # A reader's fetch is recorded (the system resolver names 127.0.0.1 "localhost").
    _served(client, pixel_url, link_url, "127.0.0.1")
    reader = {"messageId": queued.json()["messageId"], "remoteAddress": "127.0.0.1",
              "userAgent": "Scanner/1"}
    assert _tracked(alice.tenant) == [("trackOpen", "box", reader),
                                      ("trackClick", "box", {**reader, "url": OFFER})]


# What the reverse lookup of the tests below answers (``TRACKING_REVERSE_DNS`` names it).
HOST_NAMES = {"192.0.2.7": "scan-7.ess.barracuda.com", "2001:db8::8": "mx.spfbl.net",
              "192.0.2.9": "reader.example.net"}


def named_hosts(address: str) -> str:
    if address not in HOST_NAMES:
        raise OSError(1, "Unknown host")
    return HOST_NAMES[address]


def test_hosts_named_as_barracudas_or_spfbls_get_the_image_and_the_redirect_and_record_nothing(
        alice, client, account, settings):
    settings.TRACKING_REVERSE_DNS = "tests.compat.test_tracking.named_hosts"
    pixel_url, link_url = _links(_queued_html(alice.client.post(SUBMIT, TRACKED,
                                                                format="json")))
    for address in ("192.0.2.7", "2001:db8::8"):
        _served(client, pixel_url, link_url, address)
    assert _tracked(alice.tenant) == []
    for address in ("192.0.2.9", "192.0.2.10"):  # another name; no name at all
        _served(client, pixel_url, link_url, address)
    assert [(name, data["remoteAddress"]) for name, _, data in _tracked(alice.tenant)] == [
        ("trackOpen", "192.0.2.9"), ("trackClick", "192.0.2.9"),
        ("trackOpen", "192.0.2.10"), ("trackClick", "192.0.2.10")]


def test_the_operator_may_record_automated_fetches_too(alice, client, account, settings):
    pixel_url, link_url = _links(_queued_html(alice.client.post(SUBMIT, TRACKED,
                                                                format="json")))
    _served(client, pixel_url, link_url, "66.249.87.5")
    assert _tracked(alice.tenant) == []
    settings.TRACKING_SKIP_AUTOMATED = False  # EMAILAPI_TRACKING_SKIP_AUTOMATED=false
    _served(client, pixel_url, link_url, "66.249.87.5")
    assert [(name, data["remoteAddress"]) for name, _, data in _tracked(alice.tenant)] == [
        ("trackOpen", "66.249.87.5"), ("trackClick", "66.249.87.5")]


class _HeldLookup:
    """A reverse lookup that names every address a Barracuda scanner, once released."""

    def __init__(self):
        self.asked, self.released = threading.Event(), threading.Event()

    def __call__(self, address: str) -> str:
        self.asked.set()
        assert self.released.wait(60)
        return "scan.barracuda.com"


held_lookup = _HeldLookup()


@pytest.mark.django_db(transaction=True)  # the ASGI application's own database connection
def test_the_image_is_served_before_the_reverse_lookup_answers(alice, account, settings):
    settings.TRACKING_REVERSE_DNS = "tests.compat.test_tracking.held_lookup"
    settings.TRACKING_REVERSE_DNS_TIMEOUT = 30  # the lookup answers within it, once released
    pixel_url, _ = _links(_queued_html(alice.client.post(SUBMIT, TRACKED, format="json")))
    path, query = pixel_url.split("?", 1)
    from emailapi.asgi import application

    async def fetch():
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
                 "query_string": query.encode(), "http_version": "1.1", "scheme": "http",
                 "headers": [(b"host", b"testserver")], "server": ("127.0.0.1", 80),
                 "client": ("192.0.2.60", 5000), "root_path": "", "asgi": {"version": "3.0"}}
        app = ApplicationCommunicator(application, scope)
        await app.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await app.receive_output(30)
        body = await app.receive_output(30)
        held_lookup.released.set()  # only now can the lookup answer
        await app.wait(60)
        return start, body

    try:
        start, body = asgi_calls.run(fetch)
    finally:
        held_lookup.released.set()
    assert start["status"] == 200
    assert body["body"][:6] == b"GIF89a"
    assert body.get("more_body", False) is False
    assert held_lookup.asked.is_set()  # and then it named a scanner: nothing recorded
    assert _tracked(alice.tenant) == []


def test_each_mail_merge_message_names_its_own_message_id(alice, client, account):
    merge = {**{k: v for k, v in TRACKED.items() if k != "to"},
             "mailMerge": [{"to": {"address": "a@example.test"}},
                           {"to": {"address": "b@example.test"}}]}
    results = alice.client.post(SUBMIT, merge, format="json").json()["mailMerge"]
    for result in results:
        entry = OutboxEntry.objects.get(queue_id=result["queueId"])
        pixel_url, link_url = _links(_html(bytes(entry.raw)))
        client.get(pixel_url)
        client.get(link_url)
        assert entry.message_id == result["messageId"]
    message_ids = [data["messageId"] for _, _, data in _tracked(alice.tenant)]
    assert message_ids == [results[0]["messageId"]] * 2 + [results[1]["messageId"]] * 2
    assert results[0]["messageId"] != results[1]["messageId"]


def test_the_links_are_made_after_the_template_is_rendered(alice, account):
    html = _queued_html(alice.client.post(SUBMIT, {
        **TRACKED, "html": '<a href="{{params.url}}">Go</a>',
        "render": {"params": {"url": "https://shop.example/p?x=1&y=2"}}}, format="json"))
    target = parse_qs(urlsplit(html_lib.unescape(HREF.findall(html)[0])).query)
    assert tracking.read(tracking.CLICK, target["data"][0], target["sig"][0])["url"] == \
        "https://shop.example/p?x=1&y=2"


def test_a_list_messages_unsubscribe_link_is_left_alone(alice, account):
    html = _queued_html(alice.client.post(SUBMIT, {
        **TRACKED, "listId": "news",
        "html": '<a href="{{rcpt.unsubscribeUrl}}">Leave</a> <a href="https://shop.example/">'
                'Shop</a>'}, format="json"))
    leave, shop = HREF.findall(html)
    assert urlsplit(html_lib.unescape(leave)).path == "/unsubscribe"
    assert urlsplit(html_lib.unescape(shop)).path == "/redirect"


def test_a_base_url_starts_every_link_of_the_send(alice, account):
    html = _queued_html(alice.client.post(SUBMIT, {
        **TRACKED, "baseUrl": "https://track.example.test/", "listId": "news",
        "html": '<a href="{{rcpt.unsubscribeUrl}}">Leave</a>'}, format="json"))
    leave, = HREF.findall(html)
    src, = SRC.findall(html)
    assert leave.startswith("https://track.example.test/unsubscribe?")  # as in EmailEngine
    assert src.startswith("https://track.example.test/open.gif?")


@pytest.mark.parametrize(("base_url", "words"), [
    ("ftp://track.example.test", "Must be an http(s) URL"),
    ("track.example.test", "Must be an http(s) URL"),
    ("https://", "Must be an http(s) URL"),
    ("https://track.example.test/?x=1", "Give the URL alone: no user, query or fragment"),
    (5, "Must be a string"),
])
def test_a_base_url_that_is_not_an_http_url_is_refused(alice, account, base_url, words):
    response = alice.client.post(SUBMIT, {**TRACKED, "baseUrl": base_url}, format="json")
    assert response.status_code == 400
    assert response.json()["details"]["baseUrl"][0].startswith(words)
    assert not OutboxEntry.objects.exists()


def test_a_dry_run_previews_the_message_without_trackers(alice, account):
    response = alice.client.post(SUBMIT, {**TRACKED, "dryRun": True}, format="json")
    html = _html(base64.b64decode(response.json()["preview"]))
    assert html.strip() == TRACKED["html"]


def test_a_text_only_send_has_nothing_to_track_and_is_sent(alice, account):
    answer = alice.client.post(SUBMIT, {**{k: v for k, v in TRACKED.items() if k != "html"}},
                               format="json")
    assert _queued_html(answer) is None
    raw = bytes(OutboxEntry.objects.get().raw)
    assert b"/redirect?" not in raw
    assert b"/open.gif?" not in raw


RAW_HTML = TRACKED["html"].replace("<p>", "<p>Gr\u00fc\u00dfe! ")


def _raw_tracked() -> bytes:
    """A caller's own message: text and HTML alternatives (the HTML quoted-printable, as the
    email package writes UTF-8 text), with a header of its own."""
    return raw_message(subject="Offer", to="Ann <ann@example.test>", body=f"See {OFFER}",
                       html=RAW_HTML, message_id="<raw-offer@example.test>",
                       headers={"X-Campaign": "spring"})


@pytest.mark.django_db(transaction=True)  # the send queue's own transactions, as in rq
def test_a_raw_messages_html_part_is_tracked_and_the_rest_sent_as_written(
        alice, client, smtp_user, smtp_server):
    """EmailEngine tracks a raw message too: its HTML part gets the image and the links,
    every other byte of it (headers, the text part, the boundaries) is sent as written."""
    sending_account(alice.tenant, smtp_user, smtp_server)
    raw = _raw_tracked()
    queued = alice.client.post(SUBMIT, {"raw": b64(raw), "trackOpens": True,
                                        "trackClicks": True}, format="json")
    assert queued.status_code == 200, queued.json()
    assert queued.json()["messageId"] == "<raw-offer@example.test>"
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    message = received.message
    assert message["X-Campaign"] == "spring"
    assert message.get_body(("plain",)).get_content().strip() == f"See {OFFER}"
    html = message.get_body(("html",)).get_content()
    assert "Gr\u00fc\u00dfe!" in html
    assert HREF.findall(html)[1] == "mailto:help@example.test"
    pixel_url, link_url = _links(html)
    boundary = message.get_boundary().encode()
    sent, written = (data.replace(b"\r\n", b"\n").split(b"\n--" + boundary)
                     for data in (received.data, raw))
    assert len(sent) == len(written) == 4  # headers and preamble, text, HTML, the close
    assert [piece for piece in sent if b"text/html" not in piece] == \
        [piece for piece in written if b"text/html" not in piece]  # byte for byte

    assert client.get(pixel_url, REMOTE_ADDR="127.0.0.5").status_code == 200
    assert client.get(link_url, REMOTE_ADDR="127.0.0.5")["Location"] == OFFER
    assert [(name, data["messageId"]) for name, _, data in _tracked(alice.tenant)] == [
        ("trackOpen", "<raw-offer@example.test>"), ("trackClick", "<raw-offer@example.test>")]


def test_a_raw_message_without_html_is_sent_byte_for_byte(alice, account):
    raw = raw_message(body="Only text")
    answer = alice.client.post(SUBMIT, {"raw": b64(raw), "trackingEnabled": True}, format="json")
    assert answer.status_code == 200, answer.json()
    assert bytes(OutboxEntry.objects.get().raw) == raw.replace(b"\r\n", b"\n").replace(
        b"\n", b"\r\n")


def test_tracking_enabled_alone_tracks_both(alice, account):
    fields = {k: v for k, v in TRACKED.items() if k not in ("trackOpens", "trackClicks")}
    html = _queued_html(alice.client.post(SUBMIT, {**fields, "trackingEnabled": True},
                                          format="json"))
    assert len(SRC.findall(html)) == 1
    assert urlsplit(html_lib.unescape(HREF.findall(html)[0])).path == "/redirect"


def test_the_settings_are_the_defaults_of_a_send(alice, account):
    assert alice.client.get("/v1/settings?trackOpens=true&trackClicks=true").json() == {
        "trackOpens": None, "trackClicks": None}
    updated = alice.client.post("/v1/settings", {"trackOpens": True, "trackClicks": False},
                                format="json")
    assert updated.json() == {"updated": ["trackOpens", "trackClicks"]}
    assert alice.client.get("/v1/settings?trackOpens=true&trackClicks=true").json() == {
        "trackOpens": True, "trackClicks": False}
    fields = {k: v for k, v in TRACKED.items() if k not in ("trackOpens", "trackClicks")}
    html = _queued_html(alice.client.post(SUBMIT, {**fields, "trackingEnabled": True},
                                          format="json"))
    assert len(SRC.findall(html)) == 1
    assert HREF.findall(html)[0] == html_lib.escape(OFFER)  # the setting wins, as there
    explicit = _queued_html(alice.client.post(SUBMIT, {**fields, "trackOpens": False},
                                              format="json"))
    assert explicit.strip() == TRACKED["html"]
    # A raw message follows the defaults too, as in EmailEngine: opens on, clicks off.
    queued = alice.client.post(SUBMIT, {"raw": b64(raw_message(html=TRACKED["html"]))},
                               format="json").json()
    raw_html = _html(bytes(OutboxEntry.objects.get(queue_id=queued["queueId"]).raw))
    assert len(SRC.findall(raw_html)) == 1
    assert HREF.findall(raw_html)[0] == html_lib.escape(OFFER)


def test_the_settings_take_booleans_only(alice, account):
    response = alice.client.post("/v1/settings", {"trackOpens": "yes"}, format="json")
    assert response.status_code == 400
    assert response.json()["details"]["trackOpens"] == ["Must be a boolean"]
    reset = alice.client.post("/v1/settings", {"trackOpens": None}, format="json")
    assert reset.json() == {"updated": ["trackOpens"]}  # null: unset again


@pytest.mark.django_db(transaction=True)  # the dispatcher's own transactions
def test_the_events_reach_an_emailengine_webhook_in_its_shape(
        alice, client, account, allow_private_webhooks, webhook_receiver, start_dispatcher):
    receiver = webhook_receiver()
    hook = alice.client.post("/v1/webhooks", {"url": receiver.url, "events": list(TRACK_EVENTS),
                                              "format": "emailengine"}, format="json")
    assert hook.status_code == 200, hook.content
    answer = alice.client.post(SUBMIT, TRACKED, format="json")
    pixel_url, link_url = _links(_queued_html(answer))
    client.get(pixel_url, HTTP_USER_AGENT="Reader/1", REMOTE_ADDR="127.0.0.5")
    client.get(link_url, HTTP_USER_AGENT="Reader/1", REMOTE_ADDR="127.0.0.5")
    start_dispatcher()
    requests = receiver.wait_for(lambda r: len(r.accepted()) >= 2 and r.accepted())
    payloads = sorted((request.payload for request in requests), key=lambda p: p["event"])
    assert [(p["event"], p["account"]) for p in payloads] == [("trackClick", "box"),
                                                              ("trackOpen", "box")]
    message_id = answer.json()["messageId"]
    reader = {"remoteAddress": "127.0.0.5", "userAgent": "Reader/1"}
    assert payloads[0]["data"] == {"messageId": message_id, "url": OFFER, **reader}
    assert payloads[1]["data"] == {"messageId": message_id, **reader}


@pytest.mark.django_db(transaction=True)  # the web server's own database connections
def test_through_the_web_server_a_crawlers_fetch_is_served_and_a_readers_recorded(
        alice, account, settings):
    pixel_url, link_url = _links(_queued_html(alice.client.post(SUBMIT, TRACKED, format="json")))
    web = Daphne(settings, EMAILAPI_TRUSTED_PROXIES="127.0.0.1")
    try:
        for forwarded_for in ("66.249.87.5", "192.0.2.70"):
            for url, status in ((pixel_url, 200), (link_url, 302)):
                conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
                conn.request("GET", url, headers={"X-Forwarded-For": forwarded_for})
                assert conn.getresponse().status == status
                conn.close()
        # Written once each answer was served: the reader's two events, and only those (below).
        wait_for(lambda: len(_tracked(alice.tenant)) >= 2, timeout=30)
    finally:
        web.stop()
    # Each written after its answer went out: not necessarily in the order of the fetches.
    assert sorted((name, data["remoteAddress"]) for name, _, data in _tracked(alice.tenant)) == [
        ("trackClick", "192.0.2.70"), ("trackOpen", "192.0.2.70")]
