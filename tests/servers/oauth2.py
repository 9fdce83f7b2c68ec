"""A small OAuth2 authorization server on loopback, for tests that must not touch the internet.

Why: OAuth2 mailboxes (Gmail, Microsoft 365) cannot be exercised without the provider, so the
suite runs its own provider: an authorize page (one "Allow" button, so a browser or plain HTTP
requests can click through it), a token endpoint (authorization code with PKCE, refresh
token), an RFC 7662 introspection endpoint that Dovecot's ``oauth2`` passdb calls to check
the bearer tokens presented with XOAUTH2/OAUTHBEARER, and an RFC 7009 revocation endpoint
(``/revoke``, the token URL's sibling) that ends a grant. A ``generic`` OAuth2 app in the API
points at it.

Tests steer it: ``sign_in_as`` picks the address the next sign-in grants, ``access_ttl`` the
lifetime of issued access tokens, ``expire_access_tokens()`` and ``revoke_refresh_tokens()``
simulate time passing and a user revoking the grant. ``refresh_calls`` counts refreshes,
``revocations`` the tokens revoked through ``/revoke``.

No Django imports here: this module must work for any test.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from .net import LOOPBACK

__all__ = ["OAuth2Server", "dovecot_oauth2_config"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class _Grant:
    username: str
    redirect_uri: str
    challenge: str
    scope: str


@dataclass
class OAuth2Server:
    host: str = LOOPBACK
    client_id: str = field(default_factory=lambda: "client-" + secrets.token_hex(4))
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    sign_in_as: str | None = None
    access_ttl: int = 3600
    refresh_calls: int = 0
    introspections: int = 0
    revocations: int = 0
    basic_auth_requests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: dict[str, _Grant] = {}
        self._access: dict[str, tuple[str, float]] = {}  # token -> (username, expires_at)
        self._refresh: dict[str, str] = {}  # token -> username
        self._grant_of: dict[str, str] = {}  # access token -> the refresh token it came with
        self._httpd: ThreadingHTTPServer | None = None
        self.issued_tokens: list[str] = []  # every token ever issued (for leak checks)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "OAuth2Server":
        server = self

        class Handler(_Handler):
            provider = server

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True,
                         name="oauth2-test-server").start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def introspection_url(self) -> str:
        return self.base_url + "/introspect"

    @property
    def revocation_url(self) -> str:
        return self.base_url + "/revoke"

    # -- controls ----------------------------------------------------------

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access = {t: (u, 0.0) for t, (u, _) in self._access.items()}

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self._refresh.clear()

    # -- the protocol ------------------------------------------------------

    def _issue(self, username: str, refresh: str | None = None) -> dict:
        access = "at-" + secrets.token_urlsafe(24)
        refresh = refresh or "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access[access] = (username, time.time() + self.access_ttl)
            self._refresh[refresh] = username
            self._grant_of[access] = refresh
            self.issued_tokens += [access, refresh]
        claims = {"iss": self.base_url, "sub": username, "email": username,
                  "aud": self.client_id, "iat": int(time.time())}
        id_token = ".".join([_b64(b'{"alg":"none"}'), _b64(json.dumps(claims).encode()), ""])
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                "expires_in": self.access_ttl, "id_token": id_token}

    def token(self, form: dict[str, str]) -> tuple[int, dict]:
        if form.get("client_id") != self.client_id or \
                form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        kind = form.get("grant_type")
        if kind == "authorization_code":
            with self._lock:
                grant = self._codes.pop(form.get("code", ""), None)
            if grant is None or grant.redirect_uri != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}
            verifier = form.get("code_verifier", "")
            if _b64(hashlib.sha256(verifier.encode()).digest()) != grant.challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE mismatch"}
            return 200, self._issue(grant.username)
        if kind == "refresh_token":
            self.refresh_calls += 1
            with self._lock:
                username = self._refresh.get(form.get("refresh_token", ""))
            if username is None:
                return 400, {"error": "invalid_grant", "error_description": "Token revoked"}
            return 200, self._issue(username, refresh=form["refresh_token"])
        return 400, {"error": "unsupported_grant_type"}

    def revoke(self, form: dict[str, str]) -> tuple[int, dict]:
        """RFC 7009: revoking a refresh token ends its grant (its access tokens die with it);
        an unknown token is answered 200 all the same (2.2)."""
        if form.get("client_id") != self.client_id or \
                form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        token = form.get("token", "")
        with self._lock:
            grant = token if token in self._refresh else self._grant_of.get(token)
            if grant in self._refresh or token in self._access:
                self.revocations += 1
            self._refresh.pop(grant or "", None)
            for access in [a for a, r in self._grant_of.items() if r == grant] + [token]:
                self._access.pop(access, None)
        return 200, {}

    def introspect(self, token: str) -> dict:
        self.introspections += 1
        with self._lock:
            username, expires_at = self._access.get(token, ("", 0.0))
        if not username or expires_at <= time.time():
            return {"active": False}
        return {"active": True, "username": username, "exp": int(expires_at)}

    def approve(self, query: dict[str, str]) -> str:
        """The user clicked "Allow": the redirect back to the client, with a fresh code."""
        code = "code-" + secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = _Grant(self.sign_in_as or "", query["redirect_uri"],
                                       query.get("code_challenge", ""), query.get("scope", ""))
        sep = "&" if "?" in query["redirect_uri"] else "?"
        return query["redirect_uri"] + sep + urlencode({"code": code,
                                                        "state": query.get("state", "")})


class _Handler(BaseHTTPRequestHandler):
    provider: OAuth2Server

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _form(self) -> dict[str, str]:
        """The form, with client credentials sent in HTTP Basic (RFC 6749 2.3.1, as Yahoo's
        backend sends them) merged in; such requests are counted."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            form.update(client_id=unquote(client_id), client_secret=unquote(secret))
            self.provider.basic_auth_requests += 1
        return form

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/authorize":
            return self._json(404, {"error": "not_found"})
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if query.get("client_id") != self.provider.client_id or \
                query.get("response_type") != "code":
            return self._send(400, b"unknown client", "text/plain")
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in query.items())
        page = (f"<!doctype html><title>Test provider</title><form method=post>{hidden}"
                f"<p>Sign in as {html.escape(self.provider.sign_in_as or '?')}</p>"
                f'<button id="allow" type="submit">Allow</button></form>')
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self._form()
        if path == "/authorize":
            return self._send(302, b"", "text/plain",
                              {"Location": self.provider.approve(form)})
        if path == "/token":
            status, body = self.provider.token(form)
            return self._json(status, body)
        if path == "/introspect":
            return self._json(200, self.provider.introspect(form.get("token", "")))
        if path == "/revoke":
            status, body = self.provider.revoke(form)
            return self._json(status, body)
        return self._json(404, {"error": "not_found"})


def dovecot_oauth2_config(server: OAuth2Server) -> Callable[[str], str]:
    """Extra Dovecot configuration adding XOAUTH2/OAUTHBEARER with an ``oauth2`` passdb that
    asks ``server`` (introspection, POST) whether a bearer token is live and whose it is.

    It comes after the password passdb: a password login is decided there; a bearer token is
    not a password, fails there and falls through to the oauth2 passdb. Users still need their
    passwd-file entry (``Dovecot.add_user``) for the userdb (home, uid). A callable for
    ``Dovecot(extra_config=...)``: the passdb's settings file goes into the instance's own
    directory, so it is removed with it (a temp file of its own outlived every run)."""

    def config(base_dir: str) -> str:
        path = os.path.join(base_dir, "oauth2.conf.ext")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(f"introspection_mode = post\n"
                     f"introspection_url = {server.introspection_url}\n"
                     f"username_attribute = username\n"
                     f"active_attribute = active\n"
                     f"active_value = true\n")
        os.chmod(path, 0o644)
        return (f"auth_mechanisms = plain login xoauth2 oauthbearer\n"
                f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {path}\n}}\n")

    return config
