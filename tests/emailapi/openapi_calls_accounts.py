"""Real calls of EmailEngine's account and token routes (issue 16) for
``test_openapi.test_real_responses_match_the_document``, on the mailbox ``box`` that
``_read_api_calls`` registered and synced."""

from __future__ import annotations


def _accounts_calls(alice):
    api = alice.client

    def revoke_by_emailengine_id():
        raw = api.post("/v1/tokens", {"description": "gone"}, format="json").json()["token"]
        from accounts.tokens import hash_token
        return api.delete(f"/v1/token/{hash_token(raw)}")

    def token_id():
        return api.post("/v1/tokens", {"description": "item"}, format="json").json()["id"]

    def revoke_token_item():
        return api.delete(f"/v1/tokens/{token_id()}")

    return [
        ("/v1/account", "post", lambda: api.post("/v1/account", {
            "account": "ee", "name": "EE", "path": ["INBOX"], "notifyFrom": "2024-01-01T00:00:00Z",
            "locale": "et", "imapIndexer": "full",
            "imap": {"host": "imap.example.com", "port": 993, "secure": True,
                     "auth": {"user": "u", "pass": "p"}}}, format="json")),
        ("/v1/account/{account}", "get", lambda: api.get("/v1/account/ee")),
        ("/v1/logs/{account}", "get", lambda: api.get("/v1/logs/ee")),
        ("/v1/logs/{account}", "get", lambda: api.get("/v1/logs/nobody")),
        ("/v1/accounts", "get", lambda: api.get("/v1/accounts?query=nothing-matches")),
        ("/v1/tokens", "post", lambda: api.post("/v1/tokens", {
            "account": "ee", "description": "d", "scopes": ["api"]}, format="json")),
        ("/v1/token/{token}", "delete", revoke_by_emailengine_id),
        ("/v1/tokens/{token}", "get", lambda: api.get(f"/v1/tokens/{token_id()}")),
        ("/v1/tokens/{token}", "get", lambda: api.get("/v1/tokens/" + "ab" * 32)),
        ("/v1/tokens/{token}", "delete", revoke_token_item),
        ("/v1/tokens", "get", lambda: api.get("/v1/tokens?query=item&page=0&pageSize=5")),
        ("/v1/account/{account}/sync", "put",
         lambda: api.put("/v1/account/ee/sync", {"sync": True}, format="json")),
        ("/v1/account/{account}/flush", "put",
         lambda: api.put("/v1/account/ee/flush", {"flush": True}, format="json")),
        ("/v1/stats", "get", lambda: api.get("/v1/stats?seconds=60")),
    ]
