"""EmailEngine's stored templates: ``/v1/templates`` with its bodies and answers, and a send
that names one (``template``, ``render``), composed and sent through the recording SMTP
server."""

from __future__ import annotations

import base64
import email
import email.policy

import pytest

from mailboxes.models import MessageTemplate
from tests.mailboxes.helpers import register
from tests.mailboxes.sending_helpers import sending_account, work_send_queue

pytestmark = pytest.mark.django_db

# EmailEngine's documentation example for POST /v1/templates/template.
WELCOME = {
    "account": "box",
    "name": "Welcome Email",
    "description": "Welcome new users to the platform",
    "content": {
        "subject": "Welcome to {{{params.companyName}}}!",
        "text": "Hello {{params.firstName}},\n\nWelcome to {{params.companyName}}!",
        "html": "<h1>Hello {{params.firstName}}</h1><p>Welcome to "
                "<strong>{{params.companyName}}</strong>!</p>",
    },
}
TO = [{"name": "Nyan Cat", "address": "nyan.cat@example.test"}]


def _registered(alice, smtp_user, smtp_server, account_id: str = "box"):
    """An account that can send (no sync: composing needs none; the real send below does)."""
    smtp = {**smtp_server.smtp_settings(smtp_user.username, smtp_user.password),
            "tls": {"rejectUnauthorized": False}}
    return register(alice.tenant, smtp_user, account_id, smtp=smtp, email="box@example.test")


@pytest.fixture
def account(alice, smtp_user, smtp_server):
    return _registered(alice, smtp_user, smtp_server)


def _create(client, body):
    return client.post("/v1/templates/template", body, format="json")


def _preview(response) -> email.message.EmailMessage:
    assert response.status_code == 200, response.json()
    raw = base64.b64decode(response.json()["preview"])
    return email.message_from_bytes(raw, policy=email.policy.default)


def _parts(message) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.walk()
            if not part.is_multipart()}


def test_create_get_list_update_and_delete_answer_as_emailengine(alice, account):
    created = _create(alice.client, WELCOME).json()
    assert set(created) == {"created", "account", "id"}
    assert (created["created"], created["account"]) == (True, "box")
    template_id = created["id"]
    assert len(base64.urlsafe_b64decode(template_id + "==")) == 12

    got = alice.client.get(f"/v1/templates/template/{template_id}").json()
    assert got["account"] == "box"
    assert got["id"] == template_id
    assert (got["name"], got["description"], got["format"]) == (
        "Welcome Email", "Welcome new users to the platform", "html")
    assert got["content"] == WELCOME["content"]
    assert got["created"].endswith("Z")
    assert "updated" not in got

    listed = alice.client.get("/v1/templates?account=box").json()
    assert {k: listed[k] for k in ("account", "total", "page", "pages")} == {
        "account": "box", "total": 1, "page": 0, "pages": 1}
    assert [t["id"] for t in listed["templates"]] == [template_id]
    assert "content" not in listed["templates"][0]
    shared = alice.client.get("/v1/templates").json()
    assert (shared["account"], shared["total"], shared["templates"]) == (None, 0, [])

    updated = alice.client.put(f"/v1/templates/template/{template_id}",
                               {"name": "Welcome", "content": {"subject": "Hi"}},
                               format="json").json()
    assert updated == {"updated": True, "account": "box", "id": template_id}
    got = alice.client.get(f"/v1/templates/template/{template_id}").json()
    assert (got["name"], got["content"]) == ("Welcome", {"subject": "Hi"})  # replaced whole
    assert got["description"] == WELCOME["description"]
    assert got["updated"].endswith("Z")

    deleted = alice.client.delete(f"/v1/templates/template/{template_id}").json()
    assert deleted == {"deleted": True, "account": "box", "id": template_id}
    again = alice.client.delete(f"/v1/templates/template/{template_id}").json()
    assert again == {"deleted": False, "account": None, "id": template_id}
    assert alice.client.get(f"/v1/templates/template/{template_id}").status_code == 404


def test_another_tenant_sees_and_touches_none_of_them(alice, bob, account):
    template_id = _create(alice.client, {**WELCOME, "account": None}).json()["id"]
    assert bob.client.get(f"/v1/templates/template/{template_id}").json()["code"] == \
        "TemplateNotFound"
    assert bob.client.put(f"/v1/templates/template/{template_id}", {"name": "x"},
                          format="json").status_code == 404
    assert bob.client.delete(f"/v1/templates/template/{template_id}").json()["deleted"] is False
    assert bob.client.get("/v1/templates").json()["total"] == 0
    assert MessageTemplate.objects.get(template_id=template_id).name == "Welcome Email"


def test_flush_needs_force_and_deletes_only_that_accounts(alice, account):
    kept = _create(alice.client, {**WELCOME, "account": None}).json()["id"]
    _create(alice.client, WELCOME)
    refused = alice.client.delete("/v1/templates/account/box")
    assert refused.status_code == 400
    assert "force" in refused.json()["details"]
    assert MessageTemplate.objects.count() == 2
    flushed = alice.client.delete("/v1/templates/account/box?force=true").json()
    assert flushed == {"flushed": True, "account": "box"}
    assert list(MessageTemplate.objects.values_list("template_id", flat=True)) == [kept]
    assert alice.client.delete("/v1/templates/account/nobody?force=true").status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({**WELCOME, "account": "nobody"}, None),
    ({**WELCOME, "content": {"html": "{{#if params.x}}open"}}, "content.html"),
    ({**WELCOME, "content": {"subject": "{{> partial}}"}}, "content.subject"),
    ({**WELCOME, "format": "mjml"}, "format"),
    ({k: v for k, v in WELCOME.items() if k != "name"}, "name"),
    ({k: v for k, v in WELCOME.items() if k != "content"}, "content"),
    ({**WELCOME, "content": {"body": "x"}}, "content.body"),
])
def test_bad_templates_are_refused_and_store_nothing(alice, account, body, field):
    response = _create(alice.client, body)
    if field is None:
        assert response.status_code == 404
        assert response.json()["code"] == "AccountNotFound"
    else:
        assert response.status_code == 400, response.json()
        assert field in response.json()["details"]
    assert not MessageTemplate.objects.exists()


def test_a_send_takes_the_template_rendered_with_its_params(alice, account):
    template_id = _create(alice.client, WELCOME).json()["id"]
    response = alice.client.post("/v1/account/box/submit", {
        "to": TO, "template": template_id, "dryRun": True,
        "render": {"params": {"firstName": "<Ann>", "companyName": "Acme & Co"}}},
        format="json")
    message = _preview(response)
    assert message["Subject"] == "Welcome to Acme & Co!"  # {{{ }}}: not escaped
    parts = _parts(message)
    assert parts["text/plain"].replace("\r\n", "\n").strip() == \
        "Hello &lt;Ann&gt;,\n\nWelcome to Acme &amp; Co!"  # {{ }} escapes, as Handlebars does
    assert "<h1>Hello &lt;Ann&gt;</h1><p>Welcome to <strong>Acme &amp; Co</strong>!</p>" in \
        parts["text/html"]


def test_render_false_sends_the_stored_content_as_it_is(alice, account):
    template_id = _create(alice.client, WELCOME).json()["id"]
    message = _preview(alice.client.post("/v1/account/box/submit", {
        "to": TO, "template": template_id, "render": False, "dryRun": True}, format="json"))
    assert message["Subject"] == "Welcome to {{{params.companyName}}}!"


def test_account_and_service_values_and_a_markdown_template(alice, account, settings):
    settings.EMAILAPI_SERVICE_URL = "https://mail.example.test"
    alice.client.put("/v1/account/box", {"name": "Box Owner"}, format="json")
    template_id = _create(alice.client, {
        "account": None, "name": "md", "format": "markdown",
        "content": {"subject": "From {{account.name}}",
                    "html": "# Hi {{params.who}}\n\n*Visit* {{service.url}}",
                    "previewText": "For {{params.who}}"}}).json()["id"]
    message = _preview(alice.client.post("/v1/account/box/submit", {
        "to": TO, "template": template_id, "render": {"params": {"who": "Bo"}},
        "dryRun": True}, format="json"))
    assert message["Subject"] == "From Box Owner"
    html = _parts(message)["text/html"]
    assert "<h1>Hi Bo</h1>" in html
    assert "<p><em>Visit</em> https://mail.example.test</p>" in html
    assert "For Bo" in html  # the preview text, rendered


def test_a_send_may_render_its_own_fields(alice, account):
    message = _preview(alice.client.post("/v1/account/box/submit", {
        "to": TO, "subject": "Order {{params.order}}", "text": "{{#each params.items}}- {{this}}\n"
        "{{/each}}", "render": {"params": {"order": 42, "items": ["tea", "cake"]}},
        "dryRun": True}, format="json"))
    assert message["Subject"] == "Order 42"
    assert _parts(message)["text/plain"].replace("\r\n", "\n").strip() == "- tea\n- cake"


def test_another_accounts_template_or_an_unknown_one_is_404_and_queues_nothing(
        alice, account, smtp_user, smtp_server):
    _registered(alice, smtp_user, smtp_server, account_id="other")
    foreign = _create(alice.client, {**WELCOME, "account": "other"}).json()["id"]
    for template_id in (foreign, "AAABgUIbuG0AAAAE"):
        response = alice.client.post("/v1/account/box/submit", {
            "to": TO, "template": template_id}, format="json")
        assert response.status_code == 404, response.json()
        assert response.json()["code"] == "TemplateNotFound"
    assert alice.client.get("/v1/outbox").json()["total"] == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"to": TO, "subject": "{{#each params.x}}", "render": {"params": {}}}, "subject"),
    ({"to": TO, "text": "x", "render": {"params": []}}, "render"),
    ({"to": TO, "text": "x", "render": "yes"}, "render"),
    ({"raw": base64.b64encode(b"Subject: x\r\n\r\nx").decode(), "template": "abc"},
     "template"),
])
def test_bad_renders_are_refused_and_queue_nothing(alice, account, body, field):
    response = alice.client.post("/v1/account/box/submit", body, format="json")
    assert response.status_code == 400, response.json()
    assert any(key.split(".")[0] == field for key in response.json()["details"])
    assert alice.client.get("/v1/outbox").json()["total"] == 0


@pytest.mark.django_db(transaction=True)  # the send queue's own transactions, as in rq
def test_the_rendered_message_is_what_is_sent(alice, smtp_user, smtp_server):
    sending_account(alice.tenant, smtp_user, smtp_server)
    template_id = _create(alice.client, WELCOME).json()["id"]
    body = alice.client.post("/v1/account/box/submit", {
        "from": {"address": "me@example.test"}, "to": TO, "template": template_id,
        "render": {"params": {"firstName": "Ann", "companyName": "Acme"}}},
        format="json").json()
    work_send_queue()
    received = smtp_server.wait_for_messages(1)[0]
    assert received.message["Message-ID"] == body["messageId"]
    assert received.message["Subject"] == "Welcome to Acme!"


# -- mail merge ------------------------------------------------------------------------------

MERGE = [{"to": {"name": "Ann", "address": "ann@example.test"}, "params": {"firstName": "Ann"}},
         {"to": {"address": "bo@example.test"}, "params": {"firstName": "Bo"},
          "messageId": "<bo-1@example.test>", "sendAt": "2099-01-01T00:00:00Z"}]


def test_a_mail_merge_queues_one_message_per_entry_rendered_with_its_params(alice, account):
    template_id = _create(alice.client, WELCOME).json()["id"]
    response = alice.client.post("/v1/account/box/submit", {
        "from": {"address": "me@example.test"}, "template": template_id, "mailMerge": MERGE},
        format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"response", "mailMerge"}
    first, second = body["mailMerge"]
    assert (first["success"], first["to"]) == (True, MERGE[0]["to"])
    assert (second["messageId"], second["sendAt"]) == ("<bo-1@example.test>",
                                                       "2099-01-01T00:00:00.000Z")
    assert first["queueId"] != second["queueId"]
    entries = {e["queueId"]: e for e in alice.client.get("/v1/outbox").json()["messages"]}
    assert entries[first["queueId"]]["envelope"]["to"] == ["ann@example.test"]
    assert entries[second["queueId"]]["envelope"]["to"] == ["bo@example.test"]
    assert [entries[r["queueId"]]["subject"] for r in (first, second)] == [
        "Welcome to !", "Welcome to !"]  # companyName was in no entry's params


def test_a_mail_merge_reads_what_its_entries_share_once(alice, account):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    template_id = _create(alice.client, WELCOME).json()["id"]
    entries = [{"to": {"address": f"r{n}@example.test"}, "params": {"firstName": str(n)}}
               for n in range(5)]
    with CaptureQueriesContext(connection) as queries:
        body = alice.client.post("/v1/account/box/submit", {
            "from": {"address": "me@example.test"}, "template": template_id,
            "mailMerge": entries}, format="json").json()
    assert [r["success"] for r in body["mailMerge"]] == [True] * 5
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("SELECT")]
    assert sum(MessageTemplate._meta.db_table in sql for sql in reads) == 1
    assert sum("webhooks_enginesettings" in sql for sql in reads) == 1


def test_one_entry_that_cannot_be_composed_fails_alone(alice, account):
    body = alice.client.post("/v1/account/box/submit", {
        "from": {"address": "me@example.test"}, "subject": "Hi {{params.firstName}}",
        "text": "x", "mailMerge": [MERGE[0], {**MERGE[1], "messageId": "<a\r\nBcc: x@y>"}]},
        format="json").json()
    ok, failed = body["mailMerge"]
    assert ok["success"] is True
    assert (failed["success"], failed["statusCode"]) == (False, 400)
    assert failed["code"]
    assert failed["error"]
    assert alice.client.get("/v1/outbox").json()["total"] == 1


@pytest.mark.parametrize(("extra", "field"), [
    ({"to": TO}, "to"), ({"render": {"params": {}}}, "render"), ({"dryRun": True}, "dryRun"),
    ({"messageId": "<x@example.test>"}, "messageId"),
    ({"mailMerge": []}, "mailMerge"), ({"mailMerge": [{"params": {}}]}, "mailMerge"),
])
def test_what_a_mail_merge_does_not_take_is_refused(alice, account, extra, field):
    response = alice.client.post("/v1/account/box/submit", {
        "subject": "x", "text": "y", "mailMerge": MERGE, **extra}, format="json")
    assert response.status_code == 400, response.json()
    assert any(key.split(".")[0] == field for key in response.json()["details"])
    assert alice.client.get("/v1/outbox").json()["total"] == 0


def test_a_mail_merge_with_a_template_it_cannot_use_queues_nothing(alice, account):
    response = alice.client.post("/v1/account/box/submit", {
        "template": "AAABgUIbuG0AAAAE", "mailMerge": MERGE}, format="json")
    assert response.json()["code"] == "TemplateNotFound"
    assert alice.client.get("/v1/outbox").json()["total"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_mail_merge_is_sent_to_each_recipient(alice, smtp_user, smtp_server):
    sending_account(alice.tenant, smtp_user, smtp_server)
    template_id = _create(alice.client, WELCOME).json()["id"]
    merge = [{**entry, "params": {**entry["params"], "companyName": "Acme"}}
             for entry in MERGE]
    merge[1].pop("sendAt")
    alice.client.post("/v1/account/box/submit", {
        "from": {"address": "me@example.test"}, "template": template_id, "mailMerge": merge},
        format="json")
    work_send_queue()
    received = sorted(smtp_server.wait_for_messages(2), key=lambda m: m.rcpt_tos)
    assert [m.rcpt_tos for m in received] == [["ann@example.test"], ["bo@example.test"]]
    assert [m.message["Subject"] for m in received] == ["Welcome to Acme!"] * 2
    assert "Hello Bo" in received[1].message.get_body(("plain",)).get_content()
