"""Dashboard forms. Each validates what the user typed and keeps it on error; rules that the
API also has (account ids, ports, token scopes) are checked by the API's own serializers so the
two never disagree."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation

from accounts import tokens
from accounts.api import serializers as api_serializers
from accounts.models import Membership, User
from emailapi.api.errors import flatten_errors


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
            raise forms.ValidationError(
                "An account with this email already exists. Sign in or reset your password.")
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
        # Every rule the API has, each next to its input (unless the form already said so).
        for path, messages in flatten_errors(serializer.errors).items():
            field = self.API_FIELDS.get(path)
            if field not in self.errors:
                self.add_error(field, messages)
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
