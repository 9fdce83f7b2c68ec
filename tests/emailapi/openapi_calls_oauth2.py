"""Real calls of the OAuth2 app, connect-link and autoconfig routes for
``test_openapi.test_real_responses_match_the_document`` (autoconfig asks about built-in
domains only, so no DNS query is made)."""

from __future__ import annotations

APP = {"provider": "gmail", "clientId": "123.apps.googleusercontent.com",
       "clientSecret": "not-a-real-secret"}
LINK = {"type": "gmail", "redirectUrl": "https://app.example/done", "account": "linked"}


def _oauth2_calls(alice, bob):
    api = alice.client
    assert api.post("/v1/oauth2", {**APP, "app": "doomed"}, format="json").status_code == 200
    return [
        ("/v1/oauth2", "post", lambda: api.post("/v1/oauth2", {**APP, "app": "google"},
                                                format="json")),
        ("/v1/oauth2", "post", lambda: api.post("/v1/oauth2", {**APP, "app": "google"},
                                                format="json")),
        ("/v1/oauth2", "post", lambda: api.post("/v1/oauth2", {"provider": "generic"},
                                                format="json")),
        ("/v1/oauth2", "get", lambda: api.get("/v1/oauth2")),
        ("/v1/oauth2", "get", lambda: api.get("/v1/oauth2?page=-1")),
        ("/v1/oauth2/{app}", "get", lambda: api.get("/v1/oauth2/google")),
        ("/v1/oauth2/{app}", "get", lambda: bob.client.get("/v1/oauth2/google")),
        ("/v1/oauth2/{app}", "put",
         lambda: api.put("/v1/oauth2/google", {"name": "Google"}, format="json")),
        ("/v1/oauth2/{app}", "put",
         lambda: api.put("/v1/oauth2/google", {"tokenUrl": "ftp://x"}, format="json")),
        ("/v1/oauth2/{app}", "delete", lambda: api.delete("/v1/oauth2/doomed")),
        ("/v1/oauth2/{app}", "delete", lambda: api.delete("/v1/oauth2/doomed")),
        ("/v1/authentication/form", "post",
         lambda: api.post("/v1/authentication/form", LINK, format="json")),
        ("/v1/authentication/form", "post",
         lambda: api.post("/v1/authentication/form", {**LINK, "type": "yahoo"}, format="json")),
        ("/v1/autoconfig", "get", lambda: api.get("/v1/autoconfig?email=ann@gmail.com")),
        ("/v1/autoconfig", "get", lambda: api.get("/v1/autoconfig?email=nope")),
    ]
