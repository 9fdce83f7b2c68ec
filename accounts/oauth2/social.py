"""Gmail, Outlook and Yahoo sign-ins through social-auth's own backends, one tenant's app each.

social-core's ``GoogleOAuth2``, ``MicrosoftOAuth2`` and ``YahooOAuth2`` know how each
provider wants its authorize URL and token requests (Yahoo's client credentials in HTTP
Basic, its ``oob`` refresh redirect, the OAuth2 error codes). They read every value they need
(``KEY``, ``SECRET``, ``SCOPE``, ``AUTH_EXTRA_ARGUMENTS``, the URLs) from their *strategy*.
social_django's strategy answers from ``settings.py``: one app per deployment. Here each
tenant brings its own app, so ``AppStrategy`` answers from one ``OAuth2App`` row (secret
decrypted only when a request needs it), and every sign-in builds a fresh strategy and
backend: two tenants use the same backend class, each with its own client id and secret.

    start_oauth2 ──► authorize_url(app, ..., state, challenge) ──► backend.auth_url()
    finish_oauth2 ─► exchange_code(app, code, state, ..., verifier) ─► backend.auth_complete()
                                       stops at the token answer ──► flow.Tokens

What stays ours, and why:

- ``state``: connect.py keeps the attempt (link, PKCE verifier) in Redis under it, and the
  callback takes it out once; the backends' session-and-nonce state is replaced by that one.
- PKCE: social-core's Google backend sends none; every backend here does (RFC 7636).
- Endpoints: the app's effective URLs (its own, else ``presets.py``), so an app can point
  elsewhere (tests point a Gmail app at the loopback provider), and a token URL passes
  ``flow.guard_endpoint`` (https, not inside our network) before a secret goes to it.
- The requests themselves: social-core would send them with ``requests``, which follows
  redirects and resolves the host again. ``_AppBackend.request`` sends them through
  ``flow.send`` instead (checked address, no redirect, bounded answer), and a refusal is
  judged by ``flow.answer_error``, as for the ``generic`` flow: the same words either way.
- The end: social-auth would fetch the profile from the provider's API and log a Django user
  in through its pipeline. We stop at the token answer and take the address from its
  OpenID id_token (scopes ``openid email``), as the ``generic`` flow does; the mailbox, not
  a session, is the result.

The ``generic`` provider has no backend and keeps ``flow.py``.
"""

from __future__ import annotations

import requests
from social_core.backends.google import GoogleOAuth2
from social_core.backends.microsoft import MicrosoftOAuth2
from social_core.backends.yahoo import YahooOAuth2
from social_core.exceptions import (
    AuthCredentialError,
    AuthResponseError,
    AuthSessionError,
    SocialAuthBaseException,
)
from social_core.strategy import BaseStrategy
from social_core.utils import constant_time_compare, url_add_parameters

from accounts.models import OAuth2App
from accounts.oauth2 import flow, presets, registered_apps
from emailapi.lib import jsondepth

UNREACHABLE = {"connection_failed", "timeout", "tls_error"}


class AppStrategy(BaseStrategy):
    """Settings from one tenant's OAuth2 app; request data given, no session, no storage.

    No ``SOCIAL_AUTH_*`` lookup in Django settings: a value the app does not give is the
    backend's own default, never the deployment's or another tenant's. A backend reaching
    for the session or storage raises, which would mean it left the path described above."""

    def __init__(self, values: dict, data: dict | None = None):
        super().__init__(storage=None)
        self._values = values
        self._data = dict(data or {})

    def setting(self, name: str, default=None, backend=None):
        value = self._values.get(name, default)
        return value() if callable(value) else value

    def get_setting(self, name: str):
        return self.setting(name)

    def get_request_data(self, merge: bool = True) -> dict:
        return dict(self._data)

    def absolute_uri(self, path: str | None = None) -> str:
        return path or ""  # redirect URIs are absolute already (connect.py)


class _AppBackend:
    """What a tenant's sign-in changes in a social-core OAuth2 backend (see the module doc)."""

    # The redirect URI is registered exactly, so the state goes only in ``state``, never
    # appended to the redirect URI (Yahoo's backend would).
    REDIRECT_STATE = False
    STATE_PARAMETER = True

    def __init__(self, strategy: AppStrategy, redirect_uri: str, *, state: str,
                 challenge: str = "", verifier: str = "", allow_http: bool = False):
        super().__init__(strategy, redirect_uri)
        self._state, self._challenge, self._verifier = state, challenge, verifier
        self._allow_http = allow_http
        # Yahoo's auth_complete posts to the class attribute, not to access_token_url().
        self.ACCESS_TOKEN_URL = self.access_token_url()

    def get_or_create_state(self) -> str:
        return self._state

    def validate_state(self) -> str:
        given = self.get_request_state()
        if not given or not constant_time_compare(given, self._state):
            raise AuthSessionError(self, code="state_mismatch", stage="callback")
        return self._state

    def auth_params(self, state: str | None = None) -> dict:
        return {**super().auth_params(state), "code_challenge": self._challenge,
                "code_challenge_method": "S256"}

    def auth_complete_params(self, state: str | None = None) -> dict:
        return {**super().auth_complete_params(state), "code_verifier": self._verifier}

    def auth_url(self) -> str:
        """The backend's parameters, scope and extra arguments, URL-encoded.

        social-core's own ``auth_url`` unquotes the query whenever ``REDIRECT_STATE`` is off,
        which turns ``ann+news@gmail.com`` in ``login_hint`` into a space and cuts a redirect
        URI with a query string at its ``&``; this keeps the encoding."""
        params = self.auth_params(self.get_or_create_state())
        params.update(self.get_scope_argument())
        params.update(self.auth_extra_arguments())
        return url_add_parameters(self.authorization_url(), params)

    def request(self, url: str, *, method="GET", headers=None, data=None, json=None,
                auth=None, params=None, timeout=None, stage="user_info") -> requests.Response:
        """social-core's HTTP request, sent by ``flow.send`` (see the module doc). A 2xx
        answer comes back as the ``requests.Response`` social-core reads; anything else
        raises ``flow.OAuth2Error`` in our words, past social-core (which would keep the
        provider's description)."""
        prepared = requests.Request(method, url, headers=dict(headers or {}), data=data,
                                    json=json, auth=auth, params=params).prepare()
        body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
        answer = flow.send(prepared.method, prepared.url, body, dict(prepared.headers),
                           self._allow_http, timeout or self.setting("REQUESTS_TIMEOUT"))
        if not 200 <= answer.status < 300:
            raise flow.answer_error(answer)
        if jsondepth.deeper_than(answer.body.decode("utf-8", "replace"), flow.MAX_DEPTH):
            raise flow.unusable_answer()  # social-core would decode it with no bound
        response = requests.Response()
        response.status_code, response._content = answer.status, answer.body
        response.headers.update(answer.headers)
        response.url, response.request = prepared.url, prepared
        return response

    def do_auth(self, access_token: str, *args, response: dict | None = None, **kwargs):
        """Stop at the token answer: no profile request, no pipeline, no Django login."""
        return response or {}


class GoogleAppBackend(_AppBackend, GoogleOAuth2):
    pass


class MicrosoftAppBackend(_AppBackend, MicrosoftOAuth2):
    pass


class YahooAppBackend(_AppBackend, YahooOAuth2):
    pass


BACKENDS = {presets.GMAIL: GoogleAppBackend, presets.OUTLOOK: MicrosoftAppBackend,
            presets.YAHOO: YahooAppBackend}


def supports(provider: str) -> bool:
    return provider in BACKENDS


def strategy_for(app: OAuth2App, data: dict | None = None, login_hint: str = "") -> AppStrategy:
    """The backend settings of ``app``: its client id, its (lazily decrypted) secret, and its
    effective endpoints and scopes, with exactly those scopes (not the backend's defaults,
    such as Google's ``profile`` or Microsoft's ``User.Read``)."""
    endpoints = registered_apps.endpoints(app)
    extra = dict(endpoints.authorize_params)
    if login_hint:
        extra["login_hint"] = login_hint
    return AppStrategy({
        "KEY": app.client_id,
        "SECRET": lambda: registered_apps.client_secret(app),
        "SCOPE": list(endpoints.scopes),
        "IGNORE_DEFAULT_SCOPE": True,
        "AUTH_EXTRA_ARGUMENTS": extra,
        "AUTHORIZATION_URL": endpoints.authorize_url,
        "ACCESS_TOKEN_URL": endpoints.token_url,
        "REQUESTS_TIMEOUT": flow.TIMEOUT,
    }, data)


def backend_for(app: OAuth2App, redirect_uri: str, state: str, *, data: dict | None = None,
                login_hint: str = "", challenge: str = "", verifier: str = "",
                allow_http: bool = False):
    backend_class = BACKENDS[app.provider]
    return backend_class(strategy_for(app, data, login_hint), redirect_uri, state=state,
                         challenge=challenge, verifier=verifier, allow_http=allow_http)


def authorize_url(app: OAuth2App, redirect_uri: str, state: str, challenge: str,
                  login_hint: str = "") -> str:
    """The provider URL the user's browser is sent to, built by the app's backend."""
    backend = backend_for(app, redirect_uri, state, login_hint=login_hint, challenge=challenge)
    return backend.auth_url()


def exchange_code(app: OAuth2App, code: str, state: str, redirect_uri: str, verifier: str,
                  allow_http: bool = False) -> flow.Tokens:
    """The callback's code traded for tokens by the backend's own token request."""
    backend = backend_for(app, redirect_uri, state, data={"code": code, "state": state},
                          verifier=verifier, allow_http=allow_http)
    flow.guard_endpoint(backend.access_token_url(), allow_http)
    try:
        response = backend.auth_complete()
    except SocialAuthBaseException as exc:
        raise _error(exc) from None
    return flow.tokens_from(response)


def refresh_tokens(app: OAuth2App, refresh_token: str, allow_http: bool = False) -> flow.Tokens:
    """The refresh grant through the app's backend (``generic``: ``flow.refresh_tokens``)."""
    if not supports(app.provider):
        return flow.refresh_tokens(registered_apps.endpoints(app).token_url, app.client_id,
                                   registered_apps.client_secret(app), refresh_token, allow_http)
    backend = backend_for(app, "", "", allow_http=allow_http)
    flow.guard_endpoint(backend.refresh_token_url(), allow_http)
    try:
        tokens = flow.tokens_from(backend.refresh_token(refresh_token))
    except SocialAuthBaseException as exc:
        raise _error(exc) from None
    return flow.keeping(tokens, refresh_token)


def _error(exc: SocialAuthBaseException) -> flow.OAuth2Error:
    """social-core's error as ours. Non-2xx answers never get here (``request`` judges them);
    these are a 2xx answer carrying an OAuth2 error, an unusable answer, or social-core's own
    checks. Its ``detail`` (the provider's ``error_description``) is not shown, nor any
    provider code outside the standard ones (``flow.refused``)."""
    if exc.provider_code:
        return flow.refused(exc.provider_code,
                            invalid_grant=isinstance(exc, AuthCredentialError))
    if exc.code in UNREACHABLE:
        return flow.OAuth2Error("Cannot reach the provider", "ProviderUnreachable")
    if isinstance(exc, AuthResponseError):
        return flow.unusable_answer()
    if exc.status_code:
        return flow.refused(None, status=exc.status_code)
    return flow.OAuth2Error(f"The sign-in failed ({_code_of(exc)})", "OAuth2Error")


def _code_of(exc: SocialAuthBaseException) -> str:
    """social-core's own code for an error (``state_mismatch``, ...): a fixed word."""
    code = exc.code if isinstance(exc.code, str) else ""
    return code if code.replace("_", "").isalnum() and len(code) <= 40 else type(exc).__name__
