"""Dashboard forms. Each validates what the user typed and keeps it on error; rules that the
API also has (account ids, ports, token scopes) are checked by the API's own serializers so the
two never disagree."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django import forms
from django.contrib.auth import password_validation

from accounts import tokens
from accounts.api import oauth2_serializers
from accounts.api import serializers as api_serializers
from accounts.credentials import without_password
from accounts.models import Membership, OAuth2App, User
from emailapi.api.errors import flatten_errors
from webhooks.api.settings import SettingsSerializer


class MaskedURLInput(forms.URLInput):
    """Renders a URL with its password masked, also when the form comes back with errors:
    a page never carries a webhook's or a proxy's URL password (the mask, saved unchanged,
    keeps it)."""

    def format_value(self, value):
        return super().format_value(_shown(value) if value else value)


def _shown(url: str) -> str:
    """A URL as the form shows it: a well-formed one with its password masked (saved unchanged,
    it is the same URL), anything else (a refused one, typed back) with whatever looks like a
    password masked too."""
    try:
        parts = urlsplit(url)
        well_formed = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        well_formed = False
    return without_password(url, loose=not well_formed)


def add_api_errors(form: forms.Form, errors, api_fields: dict[str, str] | None = None) -> None:
    """Every rule the API's serializer has, each shown next to its input: ``api_fields`` maps
    an error's path (or its first part: ``imap.port`` -> ``imap``) to a form field; without
    it the first part names the field. An error no input owns goes to the form as a whole; an
    input the form already faulted keeps its own message."""
    for path, messages in flatten_errors(errors).items():
        head = re.split(r"[.\[]", path)[0]
        if api_fields is None:
            field = head if head in form.fields else None
        else:
            field = api_fields.get(path) or api_fields.get(head)
        if field is None or field not in form.errors:
            form.add_error(field, messages)


EMAIL_TAKEN = "An account with this email already exists. Sign in or reset your password."


class SignupForm(forms.Form):
    organization = forms.CharField(label="Organization name", max_length=200)
    email = forms.EmailField(label="Work email", max_length=254)
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "new-password"}))

    def clean_organization(self):
        name = self.cleaned_data["organization"].strip()
        if not name:
            raise forms.ValidationError("Enter your organization's name.")
        return name

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email=email).exists():
            # Sign-up has to say so (the address is the login); a password reset is offered.
            raise forms.ValidationError(EMAIL_TAKEN)
        return email

    def clean(self):
        data = super().clean()
        if data.get("password"):
            candidate = User(email=data.get("email") or "")
            try:
                password_validation.validate_password(data["password"], candidate)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class LoginForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254, widget=forms.EmailInput(
        attrs={"autocomplete": "username", "autofocus": True}))
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "current-password"}))


class MailboxForm(forms.Form):
    """IMAP settings (and optionally SMTP with the same login), tested before saving."""

    name = forms.CharField(label="Display name", max_length=256, required=False)
    email = forms.EmailField(label="Email address", max_length=320)
    account = forms.CharField(label="Account id", max_length=256, required=False,
                              help_text="Your id for this mailbox in the API; empty generates one.")
    imap_host = forms.CharField(label="IMAP server", max_length=255)
    imap_port = forms.IntegerField(label="IMAP port", min_value=1, max_value=65535, initial=993)
    imap_secure = forms.BooleanField(label="TLS from the start (port 993)", required=False,
                                     initial=True)
    username = forms.CharField(label="Username", max_length=320)
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(
        render_value=True, attrs={"autocomplete": "off"}),
        help_text="Kept so a failed connection test can be retried; stored encrypted.")
    tls_verify = forms.BooleanField(label="Verify the server's TLS certificate", required=False,
                                    initial=True)
    smtp_host = forms.CharField(label="SMTP server (optional)", max_length=255, required=False)
    smtp_port = forms.IntegerField(label="SMTP port", min_value=1, max_value=65535,
                                   required=False, initial=465)
    smtp_secure = forms.BooleanField(label="SMTP TLS from the start (port 465)", required=False,
                                     initial=True)

    # API field path -> form field, to show the API serializer's errors next to the right input.
    API_FIELDS = {"account": "account", "name": "name", "email": "email",
                  "imap.host": "imap_host", "imap.port": "imap_port",
                  "imap.auth.user": "username", "imap.auth.pass": "password",
                  "smtp.host": "smtp_host", "smtp.port": "smtp_port"}

    def clean(self):
        data = super().clean()
        serializer = api_serializers.AccountCreateSerializer(data=self.api_payload())
        if serializer.is_valid():
            self.validated_payload = serializer.validated_data
            return data
        add_api_errors(self, serializer.errors, self.API_FIELDS)
        return data

    def api_payload(self) -> dict:
        data = self.cleaned_data
        tls = {"rejectUnauthorized": bool(data.get("tls_verify"))}
        auth = {"user": data.get("username", ""), "pass": data.get("password", "")}
        payload = {
            "account": data.get("account") or None, "name": data.get("name", ""),
            "email": data.get("email", ""),
            "imap": {"host": data.get("imap_host", ""), "port": data.get("imap_port") or 1,
                     "secure": bool(data.get("imap_secure")), "auth": auth, "tls": tls},
        }
        if data.get("smtp_host"):
            payload["smtp"] = {"host": data["smtp_host"], "port": data.get("smtp_port") or 465,
                               "secure": bool(data.get("smtp_secure")), "auth": dict(auth),
                               "tls": tls}
        return payload


SCOPE_CHOICES = [
    ("api", "api: everything"),
    ("read", "read: GET requests only"),
    ("metrics", "metrics: metrics routes only"),
]


class TokenForm(forms.Form):
    name = forms.CharField(label="Token name", max_length=200)
    scopes = forms.MultipleChoiceField(label="Scopes", choices=SCOPE_CHOICES,
                                       widget=forms.CheckboxSelectMultiple, initial=["api"])

    def clean_scopes(self):
        try:
            return tokens.parse_scopes(self.cleaned_data["scopes"])
        except ValueError as exc:  # the API's own rule, its own message
            raise forms.ValidationError(str(exc)) from None


class AcceptInvitationForm(forms.Form):
    """The password a new person chooses when accepting an invitation (the address is the
    invited one and cannot change: the link proved it)."""

    password = forms.CharField(label="Choose a password", strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "new-password"}))

    def __init__(self, email: str, *args, **kwargs):
        self.email = email
        super().__init__(*args, **kwargs)

    def clean_password(self):
        password = self.cleaned_data["password"]
        password_validation.validate_password(password, User(email=self.email))
        return password


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=254)
    role = forms.ChoiceField(label="Role", choices=Membership.Role.choices,
                             initial=Membership.Role.VIEWER)


class SettingsForm(forms.Form):
    name = forms.CharField(label="Organization name", max_length=200)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Enter your organization's name.")
        return name


class OAuth2AppForm(forms.Form):
    """An OAuth2 app as ``POST /v1/oauth2`` takes it, or, given ``app``, as ``PUT`` changes it.

    The API's serializers decide what is valid (the generic provider's URLs and IMAP server,
    https-only provider endpoints, the id's characters), so the page and the API cannot
    disagree. The secret input never renders a value, and when editing an empty one keeps the
    stored secret: the only way to see a secret is to have typed it."""

    app = forms.CharField(label="App id", max_length=64, required=False,
                          help_text="Your id for the app in the API and in connect links; "
                                    "empty generates one.")
    provider = forms.ChoiceField(label="Provider", choices=OAuth2App.Provider.choices)
    name = forms.CharField(label="Name", max_length=256, required=False)
    client_id = forms.CharField(label="Client id", max_length=512, required=False)
    client_secret = forms.CharField(
        label="Client secret", max_length=2048, required=False, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again.")
    scopes = forms.CharField(label="Scopes", max_length=8000, required=False,
                             help_text="Separated by spaces; empty uses the provider's defaults.")
    redirect_url = forms.CharField(
        label="Redirect URL", max_length=1024, required=False,
        help_text="The callback registered at the provider; empty uses this service's own.")
    authorize_url = forms.CharField(label="Authorization URL", max_length=1024, required=False,
                                    help_text="Required for generic; presets know theirs.")
    token_url = forms.CharField(label="Token URL", max_length=1024, required=False,
                                help_text="Required for generic; presets know theirs.")
    imap_host = forms.CharField(label="IMAP server", max_length=255, required=False,
                                help_text="Required for generic; presets know theirs.")
    imap_port = forms.IntegerField(label="IMAP port", required=False, initial=993)
    imap_secure = forms.BooleanField(label="IMAP TLS from the start (port 993)",
                                     required=False, initial=True)
    smtp_host = forms.CharField(label="SMTP server (optional)", max_length=255, required=False)
    smtp_port = forms.IntegerField(label="SMTP port", required=False, initial=465)
    smtp_secure = forms.BooleanField(label="SMTP TLS from the start (port 465)",
                                     required=False, initial=True)

    # API field path -> form field, to show the serializer's errors next to the right input.
    API_FIELDS = {"app": "app", "provider": "provider", "name": "name",
                  "clientId": "client_id", "clientSecret": "client_secret", "scopes": "scopes",
                  "redirectUrl": "redirect_url", "authorizeUrl": "authorize_url",
                  "tokenUrl": "token_url", "imap": "imap_host", "imap.host": "imap_host",
                  "imap.port": "imap_port", "smtp": "smtp_host", "smtp.host": "smtp_host",
                  "smtp.port": "smtp_port"}

    def __init__(self, *args, app: OAuth2App | None = None, **kwargs):
        self.oauth2_app = app
        if app is not None:
            kwargs.setdefault("initial", self.initial_from(app))
        super().__init__(*args, **kwargs)
        if app is not None:
            del self.fields["app"]  # the id is the app's name in the API: it does not change
            self.fields["client_secret"].help_text = (
                "Leave empty to keep the current one (a token URL on another host needs it "
                "again: the stored one is only ever sent to the host it was given for).")

    @staticmethod
    def initial_from(app: OAuth2App) -> dict:
        imap, smtp = app.imap or {}, app.smtp or {}
        return {"provider": app.provider, "name": app.name, "client_id": app.client_id,
                "scopes": " ".join(app.scopes), "redirect_url": app.redirect_url,
                "authorize_url": app.authorize_url, "token_url": app.token_url,
                "imap_host": imap.get("host", ""), "imap_port": imap.get("port", 993),
                "imap_secure": imap.get("secure", True), "smtp_host": smtp.get("host", ""),
                "smtp_port": smtp.get("port", 465), "smtp_secure": smtp.get("secure", True)}

    def clean(self):
        data = super().clean()
        if self.oauth2_app is None:
            serializer = oauth2_serializers.OAuth2AppCreateSerializer(data=self.api_payload())
        else:
            serializer = oauth2_serializers.OAuth2AppUpdateSerializer(
                data=self.api_payload(), context={"app": self.oauth2_app})
        if serializer.is_valid():
            self.payload = dict(serializer.validated_data)
            return data
        add_api_errors(self, serializer.errors, self.API_FIELDS)
        return data

    def api_payload(self) -> dict:
        """The JSON body the API would get; blank optional values are left out (the app id
        is generated, a blank secret keeps the stored one)."""
        data = self.cleaned_data
        payload = {"provider": data.get("provider", ""), "name": data.get("name", ""),
                   "clientId": data.get("client_id", ""),
                   "scopes": [s for s in re.split(r"[\s,]+", data.get("scopes", "")) if s],
                   "redirectUrl": data.get("redirect_url", ""),
                   "authorizeUrl": data.get("authorize_url", ""),
                   "tokenUrl": data.get("token_url", ""),
                   "imap": self._server("imap", 993), "smtp": self._server("smtp", 465)}
        if self.oauth2_app is None and data.get("app"):
            payload["app"] = data["app"]
        if data.get("client_secret"):
            payload["clientSecret"] = data["client_secret"]
        return payload

    def _server(self, kind: str, default_port: int) -> dict | None:
        data = self.cleaned_data
        if not data.get(f"{kind}_host"):
            return None
        return {"host": data[f"{kind}_host"], "port": data.get(f"{kind}_port") or default_port,
                "secure": bool(data.get(f"{kind}_secure"))}


class ProxySettingsForm(forms.Form):
    """The organization's proxy (``proxyUrl``/``proxyEnabled`` of ``POST /v1/settings``),
    checked by that route's serializer."""

    proxy_url = forms.CharField(
        label="Proxy URL", max_length=2048, required=False,
        widget=MaskedURLInput(attrs={"placeholder": "socks5://user:password@host:1080"}),
        help_text="A socks5://, socks4:// or http:// proxy for the IMAP and SMTP connections of "
                  "mailboxes without a proxy of their own. Its password is stored encrypted and "
                  "shown as ******, which keeps it when saved unchanged. Empty: none. Mailbox "
                  "passwords given before the proxy is set go through it only over TLS with a "
                  "verified certificate, until given again.")
    proxy_enabled = forms.BooleanField(label="Connect through this proxy", required=False)

    API_FIELDS = {"proxyUrl": "proxy_url", "proxyEnabled": "proxy_enabled"}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        serializer = SettingsSerializer(data={"proxyUrl": cleaned.get("proxy_url", ""),
                                              "proxyEnabled": cleaned.get("proxy_enabled", False)})
        if not serializer.is_valid():
            add_api_errors(self, serializer.errors, self.API_FIELDS)
            return cleaned
        self.settings = dict(serializer.validated_data)
        return cleaned
