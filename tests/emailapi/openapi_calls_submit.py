"""Real calls of the sending routes for ``test_openapi.test_real_responses_match_the_document``:
submit (queued, refused, unknown account) and the outbox (list, entry, cancel, conflict)."""

from __future__ import annotations

import base64

from tests.base import account_payload


def _submit_calls(alice, bob):
    api = alice.client
    assert api.post("/v1/account", account_payload("sender"), format="json").status_code == 200
    raw = base64.b64encode(b"From: me@example.com\r\nTo: you@example.com\r\nSubject: Hi\r\n\r\n"
                           b"Hello\r\n").decode()
    later = {"raw": raw, "sendAt": "2099-01-01T00:00:00Z"}
    queued = api.post("/v1/account/sender/submit", later, format="json").json()["queueId"]
    cancelled = api.post("/v1/account/sender/submit", later, format="json").json()["queueId"]
    return [
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", later, format="json")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", later, format="json",
                          HTTP_PREFER="respond-async")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", {**later, "reference": {
             "message": "AAAAAQAACnA", "ignoreMissing": True}}, format="json")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", later, format="json",
                          HTTP_IDEMPOTENCY_KEY="openapi-submit")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", {"raw": raw, "dryRun": True},
                          format="json")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", {
             "to": [{"address": "you@example.com"}], "from": {"address": "me@example.com"},
             "subject": "Hi", "html": '<a href="https://example.com/">x</a>',
             "trackOpens": True, "trackClicks": True, "baseUrl": "https://ee.example.com",
             "sendAt": "2099-01-01T00:00:00Z"}, format="json")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", {"raw": raw, "trackingEnabled": True},
                          format="json")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", {"raw": "%%"}, format="json")),
        ("/v1/account/{account}/submit", "post",
         lambda: bob.client.post("/v1/account/sender/submit", later, format="json")),
        ("/v1/account/{account}/message/{id}/submit", "post",
         lambda: api.post("/v1/account/sender/message/AAAAYwAAAAE/submit", {},
                          format="json")),
        ("/v1/account/{account}/message/{id}/submit", "post",
         lambda: api.post("/v1/account/sender/message/AAAAYwAAAAE/submit",
                          {"sendAt": "soon"}, format="json")),
        ("/v1/outbox", "get", lambda: api.get("/v1/outbox?pageSize=1")),
        ("/v1/outbox", "get", lambda: api.get("/v1/outbox?state=nope")),
        ("/v1/outbox/{queueId}", "get", lambda: api.get(f"/v1/outbox/{queued}")),
        ("/v1/outbox/{queueId}", "get", lambda: bob.client.get(f"/v1/outbox/{queued}")),
        ("/v1/outbox/{queueId}", "delete", lambda: api.delete(f"/v1/outbox/{cancelled}")),
        ("/v1/outbox/{queueId}", "delete", lambda: api.delete(f"/v1/outbox/{cancelled}")),
        *_template_calls(alice, bob),
        *_blocklist_calls(alice, bob),
    ]


def _template_calls(alice, bob):
    api = alice.client
    body = {"account": None, "name": "T", "content": {"subject": "Hi {{params.n}}",
                                                      "text": "x", "html": "<p>x</p>"}}
    made = api.post("/v1/templates/template", body, format="json").json()["id"]
    path = f"/v1/templates/template/{made}"
    send = {"to": [{"address": "you@example.com"}], "from": {"address": "me@example.com"},
            "template": made, "render": {"params": {"n": 1}}, "dryRun": True}
    return [
        ("/v1/templates/template", "post",
         lambda: api.post("/v1/templates/template", {**body, "account": "sender"},
                          format="json")),
        ("/v1/templates/template", "post",
         lambda: api.post("/v1/templates/template", {"name": "T"}, format="json")),
        ("/v1/templates", "get", lambda: api.get("/v1/templates")),
        ("/v1/templates", "get", lambda: api.get("/v1/templates?account=sender&pageSize=1")),
        ("/v1/templates/template/{template}", "get", lambda: api.get(path)),
        ("/v1/templates/template/{template}", "get", lambda: bob.client.get(path)),
        ("/v1/templates/template/{template}", "put",
         lambda: api.put(path, {"description": "d"}, format="json")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", send, format="json")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", {
             "from": {"address": "me@example.com"}, "template": made, "mailMerge": [
                 {"to": {"address": "a@example.com"}, "params": {"n": 2}},
                 {"to": {"address": "b@example.com"}, "messageId": "<a\r\nb>"}]},
             format="json")),
        ("/v1/templates/template/{template}", "delete", lambda: api.delete(path)),
        ("/v1/templates/account/{account}", "delete",
         lambda: api.delete("/v1/templates/account/sender")),
        ("/v1/templates/account/{account}", "delete",
         lambda: api.delete("/v1/templates/account/sender?force=true")),
    ]


def _blocklist_calls(alice, bob):
    api = alice.client
    send = {"to": [{"address": "you@example.com"}], "from": {"address": "me@example.com"},
            "subject": "Hi", "text": "Leave: {{rcpt.unsubscribeUrl}}", "listId": "news"}
    blocked = {"account": "sender", "recipient": "gone@example.com", "reason": "bounced"}
    return [
        ("/v1/blocklist/{listId}", "post", lambda: api.post("/v1/blocklist/news", blocked,
                                                            format="json")),
        ("/v1/blocklist/{listId}", "post", lambda: api.post("/v1/blocklist/news", {
            **blocked, "recipient": "nobody"}, format="json")),
        ("/v1/blocklist/{listId}", "post", lambda: api.post("/v1/blocklist/bad_list", blocked,
                                                            format="json")),
        ("/v1/blocklists", "get", lambda: api.get("/v1/blocklists")),
        ("/v1/blocklists", "get", lambda: api.get("/v1/blocklists?page=-1")),
        ("/v1/blocklist/{listId}", "get", lambda: api.get("/v1/blocklist/news?pageSize=1")),
        ("/v1/blocklist/{listId}", "get", lambda: bob.client.get("/v1/blocklist/news")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", {**send, "dryRun": True},
                          format="json")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", {
             **send, "to": [{"address": "gone@example.com"}]}, format="json")),
        ("/v1/account/{account}/submit", "post",
         lambda: api.post("/v1/account/sender/submit", {
             **{k: v for k, v in send.items() if k != "to"}, "mailMerge": [
                 {"to": {"address": "gone@example.com"}}, {"to": {"address": "a@example.com"}}]},
             format="json")),
        ("/v1/blocklist/{listId}", "delete",
         lambda: api.delete("/v1/blocklist/news?recipient=gone@example.com")),
        ("/v1/blocklist/{listId}", "delete",
         lambda: api.delete("/v1/blocklist/news?recipient=gone@example.com")),
        ("/v1/blocklist/{listId}", "delete", lambda: api.delete("/v1/blocklist/news")),
    ]
