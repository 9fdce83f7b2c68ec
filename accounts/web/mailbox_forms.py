"""Forms of the mailbox editing and connect-link pages. As the other dashboard forms, each
checks what was typed with the API's own serializer (``AccountUpdateSerializer`` of
``PUT /v1/account/{account}``, ``AuthenticationFormSerializer`` of
``POST /v1/authentication/form``), so the page and the API cannot disagree, and keeps the
input on error. Passwords are never rendered back: an empty one keeps the stored secret."""

from __future__ import annotations

from django import forms

from accounts.api import oauth2_serializers
from accounts.api import serializers as api_serializers
from accounts.models import EmailAccount
from accounts.web.forms import MaskedURLInput, add_api_errors

KEEP = "Leave empty to keep the stored one."


class MailboxEditForm(forms.Form):
    name = forms.CharField(label="Display name", max_length=256, required=False)
    email = forms.EmailField(label="Email address", max_length=320, required=False)
    imap_host = forms.CharField(label="IMAP server", max_length=255)
    imap_port = forms.IntegerField(label="IMAP port", min_value=1, max_value=65535)
    imap_secure = forms.BooleanField(label="TLS from the start (port 993)", required=False)
    username = forms.CharField(label="Username", max_length=320)
    password = forms.CharField(label="Password", strip=False, required=False, max_length=1024,
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                               help_text=KEEP)
    tls_verify = forms.BooleanField(label="Verify the server's TLS certificate", required=False)
    smtp_host = forms.CharField(label="SMTP server (optional)", max_length=255, required=False,
                                help_text="Empty removes SMTP: the mailbox can no longer send.")
    smtp_port = forms.IntegerField(label="SMTP port", min_value=1, max_value=65535,
                                   required=False)
    smtp_secure = forms.BooleanField(label="SMTP TLS from the start (port 465)", required=False)
    smtp_username = forms.CharField(label="SMTP username", max_length=320, required=False,
                                    help_text="Empty: the IMAP username.")
    smtp_password = forms.CharField(
        label="SMTP password", strip=False, required=False, max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=KEEP + " A new SMTP server without one uses the IMAP password typed above.")
    proxy = forms.CharField(
        label="Proxy (optional)", max_length=2048, required=False,
        widget=MaskedURLInput(attrs={"placeholder": "socks5://user:password@host:1080"}),
        help_text="A socks5://, socks4:// or http:// proxy that carries this mailbox's IMAP and "
                  "SMTP connections. Its password is stored encrypted and shown as ******, "
                  "which keeps it when saved unchanged. Empty: direct, or your organization's "
                  "proxy (settings proxyUrl). A new proxy needs the mailbox's passwords typed "
                  "again: a stored password goes only the way it was given for.")
    watch_folder = forms.ChoiceField(label="Folder kept in IDLE (instant notices)",
                                     help_text="Other folders are followed too, by NOTIFY "
                                               "where the server has it, else polled.")

    API_FIELDS = {"name": "name", "email": "email", "imap.host": "imap_host",
                  "imap.port": "imap_port", "imap.auth.user": "username",
                  "imap.auth.pass": "password", "imap": "imap_host",
                  "smtp.host": "smtp_host", "smtp.port": "smtp_port",
                  "smtp.auth.user": "smtp_username", "smtp.auth.pass": "smtp_password",
                  "smtp": "smtp_host", "watchFolders": "watch_folder", "proxy": "proxy"}
    OAUTH2_READONLY = ("imap_host", "imap_port", "imap_secure", "username", "password",
                       "tls_verify", "smtp_host", "smtp_port", "smtp_secure", "smtp_username",
                       "smtp_password", "proxy")

    def __init__(self, account: EmailAccount, folders: list[str], *args, **kwargs):
        self.account = account
        kwargs.setdefault("initial", self.initial_from(account))
        super().__init__(*args, **kwargs)
        watched = list(account.watch_folders or []) or ["INBOX"]
        choices = list(dict.fromkeys([*watched, *folders]))
        self.fields["watch_folder"].choices = [(path, path) for path in choices]
        if account.oauth2:  # signs in with tokens: servers come with the OAuth2 app
            for name in self.OAUTH2_READONLY:
                del self.fields[name]

    @staticmethod
    def initial_from(account: EmailAccount) -> dict:
        imap, smtp = account.imap or {}, account.smtp or {}
        smtp_user = (smtp.get("auth") or {}).get("user", "")
        imap_user = (imap.get("auth") or {}).get("user", "")
        return {"name": account.name, "email": account.email,
                "imap_host": imap.get("host", ""), "imap_port": imap.get("port", 993),
                "imap_secure": imap.get("secure", False), "username": imap_user,
                "tls_verify": (imap.get("tls") or {}).get("rejectUnauthorized", True),
                "smtp_host": smtp.get("host", ""), "smtp_port": smtp.get("port") or 465,
                "smtp_secure": smtp.get("secure", True) if smtp else True,
                "smtp_username": smtp_user if smtp_user != imap_user else "",
                "watch_folder": (account.watch_folders or ["INBOX"])[0],
                "proxy": (account.ee_options or {}).get("proxy") or ""}

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        self.changes = self._changes()
        serializer = api_serializers.AccountUpdateSerializer(
            data=self.changes, partial=True, context={"account": self.account})
        if serializer.is_valid():
            self.payload = dict(serializer.validated_data)
        else:
            add_api_errors(self, serializer.errors, self.API_FIELDS)
        return data

    def _changes(self) -> dict:
        """The ``PUT /v1/account`` body of what differs from the stored mailbox: a server
        section only when one of its settings (or its password) was changed, so renaming a
        mailbox does not make the worker reconnect."""
        data, account = self.cleaned_data, self.account
        changes: dict = {}
        for field in ("name", "email"):
            if data.get(field, "") != (getattr(account, field) or ""):
                changes[field] = data.get(field, "")
        watch = [data["watch_folder"]]
        if watch != list(account.watch_folders or ["INBOX"]):
            changes["watchFolders"] = watch
        if account.oauth2:
            return changes
        if data.get("proxy", "") != ((account.ee_options or {}).get("proxy") or ""):
            changes["proxy"] = data.get("proxy", "")
        tls = {"rejectUnauthorized": bool(data.get("tls_verify"))}
        imap_auth = {"user": data["username"]}
        if data.get("password"):
            imap_auth["pass"] = data["password"]
        imap = {"host": data["imap_host"], "port": data["imap_port"],
                "secure": bool(data.get("imap_secure")), "auth": imap_auth, "tls": tls}
        if _differs(account.imap, imap):
            changes["imap"] = imap
        if not data.get("smtp_host"):
            if account.smtp:
                changes["smtp"] = None
            return changes
        smtp_auth = {"user": data.get("smtp_username") or data["username"]}
        if data.get("smtp_password"):
            smtp_auth["pass"] = data["smtp_password"]
        smtp = {"host": data["smtp_host"], "port": data.get("smtp_port") or 465,
                "secure": bool(data.get("smtp_secure")), "auth": smtp_auth, "tls": tls}
        if _differs(account.smtp, smtp):
            changes["smtp"] = smtp
        return changes


def _differs(stored: dict | None, wanted: dict) -> bool:
    """Whether *wanted* (host, port, secure, auth, tls) changes the *stored* section; a
    password given is always a change."""
    if not stored or wanted["auth"].get("pass"):
        return True
    if any(stored.get(key) != wanted[key] for key in ("host", "port")):
        return True
    if bool(stored.get("secure", False)) != wanted["secure"]:
        return True
    if (stored.get("auth") or {}).get("user") != wanted["auth"]["user"]:
        return True
    return (stored.get("tls") or {}).get("rejectUnauthorized", True) != \
        wanted["tls"]["rejectUnauthorized"]


class ConnectLinkForm(forms.Form):
    """A hosted connect link as ``POST /v1/authentication/form`` makes it."""

    type = forms.ChoiceField(label="Sign-in", choices=[("imap", "Password (IMAP/SMTP form)")])
    account = forms.CharField(label="Account id", max_length=256, required=False,
                              help_text="Your id for the new mailbox; empty generates one. "
                                        "An id you already have reconnects that mailbox.")
    name = forms.CharField(label="Display name", max_length=256, required=False)
    email = forms.EmailField(label="Email address (pre-filled on the page)", max_length=320,
                             required=False)
    expected_email = forms.EmailField(label="Only accept this address", max_length=320,
                                      required=False,
                                      help_text="The sign-in is refused for any other.")
    redirect_url = forms.CharField(label="Redirect URL", max_length=2048, required=False,
                                   help_text="Where your user lands afterwards, with "
                                             "?account=<id>&state=new|existing. Empty: a "
                                             "page of ours saying the mailbox is connected.")

    API_FIELDS = {"type": "type", "account": "account", "name": "name", "email": "email",
                  "expectedEmail": "expected_email", "redirectUrl": "redirect_url"}

    def __init__(self, *args, apps=(), default_redirect: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.default_redirect = default_redirect
        self.fields["type"].choices = [
            ("imap", "Password (IMAP/SMTP form)"),
            *[(app.app_id, f"OAuth2: {app.name or app.app_id} "
                           f"({app.get_provider_display()})") for app in apps]]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        body = {"type": data["type"], "redirectUrl": data.get("redirect_url")
                or self.default_redirect}
        for field, key in (("account", "account"), ("name", "name"), ("email", "email"),
                           ("expected_email", "expectedEmail")):
            if data.get(field):
                body[key] = data[field]
        serializer = oauth2_serializers.AuthenticationFormSerializer(data=body)
        if serializer.is_valid():
            self.payload = dict(serializer.validated_data)
        else:
            add_api_errors(self, serializer.errors, self.API_FIELDS)
        return data
