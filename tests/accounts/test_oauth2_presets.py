"""Provider presets: the endpoints, scopes and servers each provider needs, a generic app's
authorize URL (pure), and the small pure pieces of the flow: PKCE and reading the id_token."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.oauth2 import flow, presets


def test_googles_preset_has_the_full_mail_scope_offline_access_and_its_servers():
    endpoints = presets.resolve("gmail")
    assert endpoints.authorize_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert endpoints.token_url == "https://oauth2.googleapis.com/token"
    assert endpoints.scopes == ("https://mail.google.com/", "openid", "email")
    assert endpoints.authorize_params == {"access_type": "offline", "prompt": "consent"}
    assert endpoints.imap == {"host": "imap.gmail.com", "port": 993, "secure": True}


def test_microsofts_preset_has_imap_smtp_and_offline_access_scopes():
    endpoints = presets.resolve("outlook")
    assert endpoints.authorize_url.endswith("/common/oauth2/v2.0/authorize")
    assert endpoints.token_url.endswith("/common/oauth2/v2.0/token")
    assert endpoints.scopes[:3] == ("https://outlook.office.com/IMAP.AccessAsUser.All",
                                    "https://outlook.office.com/SMTP.Send", "offline_access")
    assert endpoints.imap["host"] == "outlook.office365.com"
    assert endpoints.smtp == {"host": "smtp.office365.com", "port": 587, "secure": False}


def test_yahoos_preset_has_mail_w():
    endpoints = presets.resolve("yahoo")
    assert endpoints.authorize_url == "https://api.login.yahoo.com/oauth2/request_auth"
    assert endpoints.token_url == "https://api.login.yahoo.com/oauth2/get_token"
    assert endpoints.scopes[0] == "mail-w"


def test_an_apps_own_values_win_over_the_preset():
    endpoints = presets.resolve("gmail", scopes=["https://mail.google.com/"],
                                authorize_url="https://accounts.google.com/custom")
    assert endpoints.authorize_url == "https://accounts.google.com/custom"
    assert endpoints.scopes == ("https://mail.google.com/",)
    assert endpoints.token_url == "https://oauth2.googleapis.com/token"  # not given: preset


def test_a_generic_apps_authorize_url_uses_only_its_own_values_with_pkce():
    """Gmail, Outlook and Yahoo URLs come from social-auth's backends (test_oauth2_social)."""
    endpoints = presets.resolve("generic", authorize_url="https://idp.example/auth?tenant=x",
                                token_url="https://idp.example/token", scopes=["mail"])
    url = presets.authorize_url(endpoints, "client-1", "https://svc.example/cb", "st4te",
                                "ch4llenge", login_hint="ann+x@example.com")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://idp.example/auth"
    assert query["tenant"] == "x"
    assert query["scope"] == "mail"
    assert "access_type" not in query
    assert query["response_type"] == "code"
    assert query["client_id"] == "client-1"
    assert query["redirect_uri"] == "https://svc.example/cb"
    assert query["state"] == "st4te"
    assert query["code_challenge"] == "ch4llenge"
    assert query["code_challenge_method"] == "S256"
    assert query["login_hint"] == "ann+x@example.com"
    assert endpoints.imap is None
    assert endpoints.authorize_params == {}


def test_pkce_challenge_is_the_s256_of_the_verifier():
    verifier, challenge = flow.pkce_pair()
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge == digest.decode().rstrip("=")
    assert 43 <= len(verifier) <= 128
    assert flow.pkce_pair()[0] != verifier


def _jwt(claims) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJub25lIn0.{body}.sig"


def test_the_signed_in_address_comes_from_the_id_token():
    assert flow.id_token_email(_jwt({"email": "ann@example.com"})) == "ann@example.com"
    assert flow.id_token_email(_jwt({"preferred_username": "bo@corp.example"})) == \
        "bo@corp.example"
    assert flow.id_token_email(_jwt({"sub": "123"})) == ""
    assert flow.id_token_email(_jwt(["not", "an", "object"])) == ""
    assert flow.id_token_email("garbage") == ""
    assert flow.id_token_email(None) == ""


def test_token_endpoints_must_be_https_unless_allowed():
    flow.check_endpoint("https://idp.example/token", allow_http=False)
    flow.check_endpoint("http://127.0.0.1:9/token", allow_http=True)
    for url, allow in (("http://idp.example/token", False), ("ftp://idp.example/", True),
                       ("https:///nohost", True)):
        try:
            flow.check_endpoint(url, allow_http=allow)
        except flow.OAuth2Error as exc:
            assert exc.code == "InvalidEndpoint"
        else:
            raise AssertionError(url)


@pytest.mark.parametrize("url", ["https://127.0.0.1:9/token", "https://169.254.169.254/token",
                                 "https://10.1.2.3/token", "https://[::1]:9/token"])
def test_a_token_url_inside_our_network_is_refused_before_any_secret_is_sent(url):
    with pytest.raises(flow.OAuth2Error) as caught:
        flow.refresh_tokens(url, "client", "secret", "refresh-token", allow_http=False)
    assert caught.value.code == "InvalidEndpoint"
    assert "internal address" in str(caught.value)
