"""Real calls of the message-changing routes for
``test_openapi.test_real_responses_match_the_document``, on the mailbox ``box`` that
``_read_api_calls`` registered and synced (its six messages are taken one per call)."""

from __future__ import annotations


def _folder_calls(alice):
    import base64

    api = alice.client
    box = "/v1/account/box"
    raw = base64.b64encode(b"Subject: Draft\r\nTo: a@example.com\r\n\r\nText\r\n").decode()
    return [
        ("/v1/account/{account}/mailbox", "post",
         lambda: api.post(f"{box}/mailbox", {"path": ["Clients", "Acme"]}, format="json")),
        ("/v1/account/{account}/mailbox", "post",
         lambda: api.post(f"{box}/mailbox", {"path": "Clients/Acme"}, format="json")),
        ("/v1/account/{account}/mailbox", "put",
         lambda: api.put(f"{box}/mailbox", {"path": "Clients/Acme", "newPath": "Clients/Beta"},
                         format="json")),
        ("/v1/account/{account}/mailbox", "delete",
         lambda: api.delete(f"{box}/mailbox?path=Clients/Beta")),
        ("/v1/account/{account}/mailbox", "delete",
         lambda: api.delete(f"{box}/mailbox?path=INBOX")),
        ("/v1/account/{account}/message", "post",
         lambda: api.post(f"{box}/message", {"path": "Drafts", "raw": raw}, format="json")),
        ("/v1/account/{account}/message", "post",
         lambda: api.post(f"{box}/message", {"path": "Drafts", "subject": "Hi", "text": "x",
                                             "to": [{"address": "b@example.com"}]},
                          format="json")),
        ("/v1/account/{account}/message", "post",
         lambda: api.post(f"{box}/message", {"path": "Drafts", "text": "x", "reference": {
             "message": "AAAAAQAACnA", "action": "reply-all", "ignoreMissing": True}},
                          format="json")),
        ("/v1/account/{account}/message", "post",
         lambda: api.post(f"{box}/message", {"path": "Nope", "raw": raw}, format="json")),
    ]


def _write_calls(alice):
    api = alice.client
    ids = [m["id"] for m in api.get("/v1/account/box/messages?path=INBOX").json()["messages"]]
    box = "/v1/account/box"
    return [
        ("/v1/account/{account}/message/{id}", "put",
         lambda: api.put(f"{box}/message/{ids[0]}", {"flags": {"add": ["\\Seen"]}},
                         format="json")),
        ("/v1/account/{account}/message/{id}", "put",
         lambda: api.put(f"{box}/message/{ids[0]}", {"flags": {"add": ["a b"]}},
                         format="json")),
        ("/v1/account/{account}/message/{id}/move", "put",
         lambda: api.put(f"{box}/message/{ids[1]}/move", {"path": "Archive"}, format="json")),
        ("/v1/account/{account}/message/{id}/move", "put",
         lambda: api.put(f"{box}/message/{ids[0]}/move", {"path": "Nope"}, format="json")),
        ("/v1/account/{account}/message/{id}/copy", "put",
         lambda: api.put(f"{box}/message/{ids[2]}/copy", {"path": "Archive"}, format="json")),
        ("/v1/account/{account}/message/{id}", "delete",
         lambda: api.delete(f"{box}/message/{ids[3]}")),
        ("/v1/account/{account}/messages", "put",
         lambda: api.put(f"{box}/messages?path=INBOX", {
             "search": {"seen": False}, "update": {"flags": {"add": ["$Seen2"]}}},
             format="json")),
        ("/v1/account/{account}/messages/move", "put",
         lambda: api.put(f"{box}/messages/move?path=INBOX", {"ids": [ids[4]], "path": "Junk"},
                         format="json")),
        ("/v1/account/{account}/messages/delete", "post",
         lambda: api.post(f"{box}/messages/delete?path=INBOX", {"ids": [ids[5]], "force": True},
                          format="json")),
        ("/v1/account/{account}/messages/delete", "put",
         lambda: api.put(f"{box}/messages/delete?path=INBOX",
                         {"search": {"subject": "nothing-matches-this"}}, format="json")),
    ]
