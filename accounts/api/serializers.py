"""Request and response shapes of the account (registered mailbox) routes.

Input names follow EmailEngine (``imap.auth.pass``, ``tls.rejectUnauthorized``) so its users can
switch by changing a base URL. Every input serializer is strict: unknown fields are a 400.
Output never carries a secret: ``auth`` is rebuilt from the stored settings, which hold none.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from accounts import identity
from accounts import state as account_state
from accounts.credentials import MASK, without_password
from accounts.models import EmailAccount
from accounts.oauth2 import registered_apps
from emailapi.api.pagination import PageQuerySerializer
from emailapi.api.serializers import QuerySerializer, StrictSerializer
from emailapi.lib import tunnels
from mailboxes.imap.client import TLS_VERSIONS
from mailboxes.message_fields import iso
from mailboxes.special_use import SETTINGS as MAIL_PATHS
from webhooks.api.serializers import validate_headers, validate_webhook_url

HOST_RE = re.compile(r"^[A-Za-z0-9.\-:\[\]_]{1,255}$")
MAX_ID_LENGTH = 256
# Control and format characters, surrogates and line or paragraph separators: invisible or
# unstorable (PostgreSQL refuses a lone surrogate), and the bidirectional overrides among them
# make one id look like another on the dashboard.
UNSHOWABLE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


def id_problem(value: str, what: str = "Account id") -> str | None:
    """Why ``value`` cannot be an id, or None. EmailEngine takes any string of up to 256
    characters (trimmed) as an account id, and its clients use colons, spaces, ``|``, ``/``,
    ``,`` and letters of any script; ours only refuses ``.`` and ``..`` alone (a URL path
    drops them as segments) and what cannot be shown. A ``/`` travels in a path as ``%2F``
    (``emailapi.api.path_ids``, which relies on no id holding a control character); an id with
    a ``,`` is named in the stream's filter by the repeated ``account`` parameter
    (``webhooks.api.stream_query``)."""
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        return f"{what} must be 1-{MAX_ID_LENGTH} characters"
    if value in (".", ".."):
        return f"{what} cannot be . or .. (a URL path drops them)"
    for char in value:
        if unicodedata.category(char) in UNSHOWABLE:
            return f"{what} cannot contain control or invisible characters (U+{ord(char):04X})"
    return None


def validate_account_id(value: str) -> str:
    problem = id_problem(value)
    if problem:
        raise serializers.ValidationError(problem)
    return value


class AuthSerializer(StrictSerializer):
    user = serializers.CharField(max_length=512, help_text="Login name")
    # ``pass`` is a Python keyword, so the field is declared under its JSON name below.
    accessToken = serializers.CharField(
        max_length=8192, required=False, write_only=True, help_text="OAuth2 access token"
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["pass"] = serializers.CharField(
            max_length=1024, required=False, write_only=True, trim_whitespace=False,
            help_text="Password (stored encrypted, never returned)",
        )
        return fields


class TlsSerializer(StrictSerializer):
    rejectUnauthorized = serializers.BooleanField(
        default=True, help_text="Refuse servers whose TLS certificate does not verify"
    )
    minVersion = serializers.ChoiceField(
        choices=list(TLS_VERSIONS), required=False,
        help_text="The oldest TLS version the server may use (EmailEngine's, Node's names; "
                  "default TLSv1.2). TLSv1 and TLSv1.1 are for old servers that have nothing "
                  "newer: weak, and allowed only to such a server")


def _host_shape(value: str) -> bool:
    """An IP address, or a DNS name of 1-63 character labels (at most 253 in all): a longer
    label cannot even be encoded for a lookup (a UnicodeError from the socket layer, a 500)."""
    literal = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(literal)
        return True
    except ValueError:
        pass
    name = value.removesuffix(".")
    return ":" not in name and len(name) <= 253 and all(
        0 < len(label) <= 63 for label in name.split("."))


class ServerSerializer(StrictSerializer):
    host = serializers.CharField(max_length=255, help_text="Server host name or IP")
    port = serializers.IntegerField(min_value=1, max_value=65535)
    secure = serializers.BooleanField(
        default=False,
        help_text="TLS from the start (993/465); false upgrades with STARTTLS when offered",
    )
    auth = AuthSerializer(required=False)
    tls = TlsSerializer(required=False)
    partial = serializers.BooleanField(
        required=False, write_only=True,
        help_text="EmailEngine's \"merge into the stored settings\": accepted and not kept, as "
                  "an update here always merges")
    useAuthServer = serializers.BooleanField(
        required=False,
        help_text="EmailEngine's: no credentials are kept; at every connection they are asked "
                  "of the authentication server set as `authServer` in /v1/settings "
                  "(`GET <authServer>?account=<id>&proto=imap|smtp` answering `{user, pass}` "
                  "or `{user, accessToken}`); `auth` may then be left out")

    def validate(self, attrs):
        attrs.pop("partial", None)
        return attrs

    def validate_host(self, value: str) -> str:
        return validate_host(value)


def validate_host(value: str) -> str:
    """A mail server's host: a DNS name or an IP address, nothing a protocol line could carry."""
    if not HOST_RE.match(value) or not _host_shape(value):
        raise serializers.ValidationError("Not a valid host name")
    return value


class ImapServerSerializer(ServerSerializer):
    auth = AuthSerializer(required=False, help_text="Required unless `useAuthServer` is true")
    sentMailPath = serializers.CharField(
        max_length=1024, required=False, allow_null=True, allow_blank=True,
        help_text="The folder that is Sent for this account, whatever the server says (sent "
                  "copies go there); empty or null: the server's. So are draftsMailPath, "
                  "junkMailPath, trashMailPath (deletes move there) and archiveMailPath")
    draftsMailPath = serializers.CharField(max_length=1024, required=False, allow_null=True,
                                           allow_blank=True)
    junkMailPath = serializers.CharField(max_length=1024, required=False, allow_null=True,
                                         allow_blank=True)
    trashMailPath = serializers.CharField(max_length=1024, required=False, allow_null=True,
                                          allow_blank=True)
    archiveMailPath = serializers.CharField(max_length=1024, required=False, allow_null=True,
                                            allow_blank=True)
    disabled = serializers.BooleanField(
        required=False,
        help_text="EmailEngine's name for a pause: true stops IMAP for the account (no worker "
                  "connects; state `paused`; sending still works), false resumes it. Not kept "
                  "with the settings: `GET` shows it true while the account is paused")
    resyncDelay = serializers.IntegerField(
        min_value=0, required=False,
        help_text="EmailEngine's seconds between full resyncs: accepted and echoed; here "
                  "changes are followed continuously (IDLE/NOTIFY, polls) instead")
    disableIMAP4rev2 = serializers.BooleanField(
        required=False,
        help_text="EmailEngine's \"do not use IMAP4rev2\": accepted and echoed, and changes "
                  "nothing, as this client speaks IMAP4rev1 only (it never ENABLEs IMAP4rev2)")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        _check_mail_paths(attrs)
        auth = attrs.get("auth")
        partial = getattr(self.root, "partial", False)
        if auth is None and not partial and not attrs.get("useAuthServer"):
            raise serializers.ValidationError({"auth": ["This field is required."]})
        if auth is not None and not partial and not (auth.get("pass") or auth.get("accessToken")):
            raise serializers.ValidationError({"auth": ["pass or accessToken is required"]})
        return attrs


def _check_mail_paths(attrs: dict) -> None:
    """``sentMailPath`` and the like name folders: not INBOX (it cannot be another special
    use), not a special use itself (``\\Sent``), one folder for one use at most."""
    errors, seen = {}, {}
    for key in MAIL_PATHS:
        path = attrs.get(key)
        if not path:
            continue
        if path.upper() == "INBOX" or path.startswith("\\"):
            errors[key] = ["A folder path other than INBOX (not a special use such as \\Sent)"]
        elif not path.isprintable():
            errors[key] = ["Control characters are not allowed"]
        elif path in seen:
            errors[key] = [f"The same folder as {seen[path]}"]
        seen.setdefault(path, key)
    if errors:
        raise serializers.ValidationError(errors)


class PathField(serializers.Field):
    """EmailEngine's ``path``: a folder path or a list of them, ``"*"`` meaning every folder
    (the default). Kept as a list; ``["*"]`` is kept as null (the default)."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list) or not data or len(data) > 1000 or not all(
                isinstance(item, str) and 0 < len(item) <= 1024 for item in data):
            raise serializers.ValidationError(
                'Expected "*", a folder path or a list of 1-1000 folder paths of 1-1024 '
                'characters')
        return None if "*" in data else data

    def to_representation(self, value):
        return value


extend_schema_field({"oneOf": [{"type": "string"},
                               {"type": "array", "items": {"type": "string"}}]})(PathField)


class EmailEngineAccountFields(StrictSerializer):
    """EmailEngine's account fields (issue 16), on both registration and update.

    Applied: ``path`` (its first folder is the one kept in IDLE, ``watchFolders``),
    ``notifyFrom``, ``syncFrom``, ``webhooks`` (a subscription of this account's events),
    ``expectedEmail`` (connect links for the account sign in only as that address), ``locale``
    and ``tz`` (the quoted date of an inline reply or forward, ``mailboxes.quote_dates``),
    ``proxy`` (the account's IMAP and SMTP connections go through it, ``accounts.mail_proxy``).
    Stored and echoed only: ``logs``, ``subconnections``, ``imapIndexer``, ``smtpEhloName``."""

    path = PathField(required=False, allow_null=True,
                     help_text='Folders to watch: "*" (default) or a list; the first listed '
                               "folder is kept in IDLE (watchFolders), every folder is indexed")
    notifyFrom = serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="No messageNew for messages whose internal date is before this")
    syncFrom = serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="History from before this day (INTERNALDATE) is not indexed; mail arriving "
                  "later always is. Applies to folders indexed after it is set (see flush)")
    logs = serializers.BooleanField(required=False, help_text="Keep an IMAP protocol log")
    expectedEmail = serializers.EmailField(
        max_length=320, required=False, allow_blank=True, allow_null=True,
        help_text="The address this account must be signed in as through a connect link: a "
                  "link for this account refuses a sign-in as any other (OAuth2: the address "
                  "the provider names). Kept until changed; empty or null removes it")
    webhooks = serializers.CharField(
        max_length=2048, required=False, allow_blank=True, allow_null=True,
        help_text="A webhook URL for this account's events: a subscription of this account "
                  "(every event) is made, changed or removed with it; empty or null removes it. "
                  "A user:password@ in it is sent as HTTP Basic (percent-decoded), not in the "
                  "request; the password is stored encrypted and shown as ******, which "
                  "written back keeps it (for the same scheme, host and port only)")
    subconnections = serializers.ListField(
        child=serializers.CharField(max_length=1024), max_length=100, required=False,
        allow_null=True,
        help_text="Accepted and echoed (every folder is followed here anyway); null unsets it")
    imapIndexer = serializers.ChoiceField(choices=["full", "fast"], required=False,
                                          allow_null=True,
                                          help_text="Accepted and echoed (the index is full); "
                                                    "null unsets it, as in EmailEngine")
    # null unsets locale, tz, subconnections and imapIndexer: GET shows them null when unset,
    # and a client that PUTs back what it read must not get a 400 for it.
    locale = serializers.CharField(
        max_length=100, required=False, allow_blank=True, allow_null=True,
        help_text="Default language (BCP 47) of the quoted date in an inline reply or forward; "
                  "null unsets it")
    tz = serializers.CharField(
        max_length=100, required=False, allow_blank=True, allow_null=True,
        help_text="Default time zone (IANA) of that date; null unsets it")
    proxy = serializers.CharField(
        max_length=2048, required=False, allow_blank=True, allow_null=True,
        help_text="The proxy the account's IMAP and SMTP connections go through: socks5://, "
                  "socks4://, socks:// (SOCKS5) or http:// (HTTP CONNECT), with "
                  "user:password@ when it wants a login (the password is kept sealed and "
                  "shown as ******; written back, the mask keeps it for the same proxy). "
                  "Without one, the settings' proxyUrl while proxyEnabled")
    smtpEhloName = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                         allow_null=True,
                                         help_text="Accepted and echoed; not used")

    webhooksCustomHeaders = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(allow_blank=True,
                                                                trim_whitespace=False)),
        max_length=20, required=False,
        help_text='[{"key", "value"}]: headers sent with the `webhooks` URL\'s requests '
                  "(sealed; GET shows the values as \"******\", which written back keep them); "
                  'a header without "value" has the empty value, as in EmailEngine')

    def to_internal_value(self, data):
        if isinstance(data, dict):  # EmailEngine's "no SMTP", "no IMAP" (a send-only account)
            data = {**data, **{key: None for key in ("imap", "smtp") if data.get(key) is False}}
        return super().to_internal_value(data)

    def _check_send_only(self, attrs: dict, oauth2: bool, smtp: dict | None) -> None:
        """``imap: false`` (or null) leaves an account that only sends: refused where it
        could do nothing (no SMTP either) or would contradict its OAuth2 app (the app's
        tokens are for its IMAP server; the worker keeps such a mailbox in sync)."""
        if "imap" not in attrs or attrs["imap"] is not None:
            return
        if oauth2:
            raise serializers.ValidationError({"imap": [
                "An OAuth2 mailbox keeps its app's IMAP server: imap cannot be false"]})
        if not smtp:
            raise serializers.ValidationError({"imap": [
                "imap: false makes a send-only account, which needs smtp settings"]})

    def validate_copy(self, value):
        return True if value is None else value

    def validate_webhooksCustomHeaders(self, value):
        headers = {}
        for item in value:
            if "key" not in item or not set(item) <= {"key", "value"}:
                raise serializers.ValidationError(
                    'Each header is {"key": ..., "value": ...} ("value" may be left out)')
            headers[item["key"]] = item.get("value", "")  # EmailEngine's default: empty
        if len(headers) != len(value):
            raise serializers.ValidationError("A header is given twice")
        return validate_headers(headers)

    def validate_webhooks(self, value):
        if value:
            validate_webhook_url(value)
        return value or ""


def validate_web_url(value: str, allow_http: bool = True) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise serializers.ValidationError("Must be an http(s) URL")
    if parts.scheme == "http" and not allow_http:
        raise serializers.ValidationError(
            "Must use https (EMAILAPI_OAUTH2_ALLOW_HTTP allows http)")
    return value


class OAuth2UserSerializer(StrictSerializer):
    user = serializers.CharField(max_length=512, help_text="The address that signed in")


def _auth_server_oauth2(attrs: dict) -> dict:
    """``oauth2.useAuthServer``: the authentication server owns the tokens, so none is taken
    (nor a sign-in that would get some); ``auth.user`` names the mailbox."""
    for key in ("accessToken", "refreshToken", "expires", "authorize", "redirectUrl"):
        if attrs.get(key) not in (None, False):
            raise serializers.ValidationError({key: [
                "Not taken with useAuthServer: the authentication server gives the tokens"]})
    if "auth" not in attrs:
        raise serializers.ValidationError({"auth": ["This field is required."]})
    return attrs


class OAuth2RegistrationSerializer(StrictSerializer):
    """EmailEngine's ``oauth2`` block: tokens the caller obtained itself for one of the
    tenant's OAuth2 apps (``POST /v1/oauth2``), whose servers the account uses."""

    provider = serializers.CharField(
        max_length=256, help_text="The OAuth2 app's id (or gmail/outlook/yahoo: the first app "
                                  "of that provider)")
    auth = OAuth2UserSerializer(required=False, help_text="Required unless `authorize`")
    accessToken = serializers.CharField(max_length=8192, required=False, write_only=True)
    refreshToken = serializers.CharField(max_length=8192, required=False, write_only=True)
    expires = serializers.DateTimeField(required=False, allow_null=True,
                                        help_text="When the access token expires")
    authorize = serializers.BooleanField(
        required=False, default=False,
        help_text="true: register nothing yet; the answer is `{\"redirect\": url}`, the "
                  "provider's sign-in page for your user, after which the mailbox is "
                  "registered (as a connect link's sign-in) with the other fields given "
                  "(not `imap`/`smtp`: the app's servers) and the browser goes to "
                  "`redirectUrl`")
    redirectUrl = serializers.CharField(
        max_length=2048, required=False, validators=[validate_web_url],
        help_text="With `authorize`: where the user lands afterwards, with "
                  "?account=<id>&state=new|existing (default: a page of ours)")
    useAuthServer = serializers.BooleanField(
        required=False,
        help_text="EmailEngine's: no tokens are kept; at every connection the access token is "
                  "asked of the authentication server set as `authServer` in /v1/settings "
                  "(`GET <authServer>?account=<id>&proto=imap|smtp` answering `{user, "
                  "accessToken}`); the app still gives the servers. Needs `auth`; not with "
                  "accessToken, refreshToken, expires or authorize")

    def validate(self, attrs):
        if attrs.get("useAuthServer"):
            return _auth_server_oauth2(attrs)
        if attrs.get("authorize"):
            return attrs
        if "redirectUrl" in attrs:
            raise serializers.ValidationError({"redirectUrl": ["Only with authorize: true"]})
        if "auth" not in attrs:
            raise serializers.ValidationError({"auth": ["This field is required."]})
        if not (attrs.get("accessToken") or attrs.get("refreshToken")):
            raise serializers.ValidationError({"refreshToken": [
                "refreshToken or accessToken is required (a sign-in through the provider "
                "is a connect link: POST /v1/authentication/form)"]})
        return attrs


@extend_schema_serializer(examples=[
    OpenApiExample("Password mailbox", request_only=True, value={
        "account": "sales-mailbox",
        "name": "Sales",
        "email": "sales@example.com",
        "imap": {"host": "imap.example.com", "port": 993, "secure": True,
                 "auth": {"user": "sales@example.com", "pass": "app-password"}},
        "smtp": {"host": "smtp.example.com", "port": 465, "secure": True,
                 "auth": {"user": "sales@example.com", "pass": "app-password"}},
    }),
])
class AccountCreateSerializer(EmailEngineAccountFields):
    account = serializers.CharField(
        max_length=256, allow_null=True, required=False, validators=[validate_account_id],
        help_text="Your id for the mailbox (unique in your tenant; any text but / and , and "
                  "spaces at its ends are trimmed, as EmailEngine does); null or absent "
                  "generates one",
    )
    name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=320, required=False, allow_blank=True)
    imap = ImapServerSerializer(
        required=False, allow_null=True,
        help_text="Required unless `oauth2` is given (then the app's) or the account only "
                  "sends: `false` (EmailEngine's), null or left out with `smtp` given "
                  "registers a send-only account (type `sending`, state `unset`)")
    smtp = ServerSerializer(required=False, allow_null=True)
    oauth2 = OAuth2RegistrationSerializer(required=False)
    copy = serializers.BooleanField(
        required=False, allow_null=True,
        help_text="Store a copy of sent mail in the Sent folder (default true; turn off for "
                  "servers that do it themselves; null, as EmailEngine, means the default)")
    watchFolders = serializers.ListField(
        child=serializers.CharField(max_length=1024, trim_whitespace=False), min_length=1,
        max_length=1, required=False,
        help_text="The folder kept in IDLE for instant notices (default [\"INBOX\"]); other "
                  "folders are followed through NOTIFY where the server has it, else polled")

    # A connect link's own fields; with ``oauth2.authorize`` every other field but the servers
    # rides along, sealed, and is saved with the account once the user has signed in.
    AUTHORIZE_FIELDS = frozenset({"account", "name", "email", "expectedEmail", "oauth2"})
    # The OAuth2 app names the servers of a mailbox it signs in.
    NOT_WITH_AUTHORIZE = ("imap", "smtp")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if (attrs.get("oauth2") or {}).get("authorize"):
            refused = [key for key in self.NOT_WITH_AUTHORIZE if key in attrs]
            if refused:
                raise serializers.ValidationError({key: [
                    "Not taken with oauth2.authorize: the OAuth2 app's servers are used"]
                    for key in refused})
            for key in ("accessToken", "refreshToken"):
                if key in attrs["oauth2"]:
                    raise serializers.ValidationError({f"oauth2.{key}": [
                        "Not taken with authorize: the sign-in gets the tokens"]})
            return attrs
        if "imap" not in attrs and "oauth2" not in attrs:
            if not attrs.get("smtp"):
                raise serializers.ValidationError({"imap": [
                    "This field is required (or smtp alone, for a send-only account)"]})
            attrs["imap"] = None  # EmailEngine's SMTP-only account
        self._check_send_only(attrs, "oauth2" in attrs, attrs.get("smtp"))
        return attrs


class AccountUpdateSerializer(EmailEngineAccountFields):
    """Partial update: only the given fields change; ``imap``/``smtp`` merge into the stored ones."""

    account = serializers.CharField(max_length=256, required=False,
                                    help_text="Must equal the account in the URL if given")
    name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=320, required=False, allow_blank=True)
    imap = ImapServerSerializer(
        required=False, allow_null=True,
        help_text="`false` (EmailEngine's) or null: the account stops using IMAP and only "
                  "sends (its IMAP settings and password go; give `imap` again to resume)")
    smtp = ServerSerializer(required=False, allow_null=True)
    copy = serializers.BooleanField(
        required=False, allow_null=True,
        help_text="Store a copy of sent mail in the Sent folder (default true; turn off for "
                  "servers that do it themselves; null, as EmailEngine, means the default)")
    watchFolders = serializers.ListField(
        child=serializers.CharField(max_length=1024, trim_whitespace=False), min_length=1,
        max_length=1, required=False,
        help_text="The folder kept in IDLE for instant notices (default [\"INBOX\"]); other "
                  "folders are followed through NOTIFY where the server has it, else polled")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        account = self.context["account"]
        self._check_send_only(attrs, bool(account.oauth2),
                              attrs["smtp"] if "smtp" in attrs else account.smtp)
        return attrs

    def validate_account(self, value):
        if value != self.context["account"].account_id:
            raise serializers.ValidationError("The account id cannot be changed")
        return value


class AccountCreateQuerySerializer(QuerySerializer):
    upsert = serializers.BooleanField(
        default=True, help_text="An id your tenant already has: update that account "
                                "(EmailEngine's behaviour, the default), or with false answer "
                                "409 AlreadyExists and change nothing")


class AccountCreatedSerializer(serializers.Serializer):
    account = serializers.CharField(required=False, help_text="Absent with `oauth2.authorize`")
    state = serializers.ChoiceField(choices=["new", "existing"], required=False,
                                    help_text="new: registered; existing: the id was taken "
                                              "and that account was updated")
    redirect = serializers.CharField(
        required=False, help_text="With `oauth2.authorize` only: the provider's sign-in page "
                                  "to send your user to (valid EMAILAPI_CONNECT_LINK_TTL s)")


class AccountUpdatedSerializer(serializers.Serializer):
    account = serializers.CharField()
    state = serializers.ChoiceField(choices=EmailAccount.State.choices)


class AccountDeleteQuerySerializer(QuerySerializer):
    revoke = serializers.BooleanField(
        default=False, help_text="OAuth2 mailboxes: revoke the grant at the provider first")


class AccountDeletedSerializer(serializers.Serializer):
    account = serializers.CharField()
    deleted = serializers.BooleanField()




class PublicAuthSerializer(serializers.Serializer):
    user = serializers.CharField()
    # As EmailEngine shows a stored secret: the mask, never the value.
    accessToken = serializers.CharField(required=False, help_text='"******" when one is stored')

    def get_fields(self):
        fields = super().get_fields()
        fields["pass"] = serializers.CharField(required=False,
                                               help_text='"******" when one is stored')
        return fields


class PublicServerSerializer(serializers.Serializer):
    host = serializers.CharField()
    port = serializers.IntegerField()
    secure = serializers.BooleanField()
    resyncDelay = serializers.IntegerField(required=False)
    disableIMAP4rev2 = serializers.BooleanField(
        required=False, help_text="IMAP only, when given: echoed, changes nothing (IMAP4rev1 "
                                  "is all this client speaks)")
    auth = PublicAuthSerializer(required=False)
    tls = TlsSerializer(required=False)
    disabled = serializers.BooleanField(required=False,
                                        help_text="IMAP only: true while the account is paused")
    sentMailPath = serializers.CharField(required=False, help_text="IMAP only, when chosen")
    draftsMailPath = serializers.CharField(required=False, help_text="IMAP only, when chosen")
    junkMailPath = serializers.CharField(required=False, help_text="IMAP only, when chosen")
    trashMailPath = serializers.CharField(required=False, help_text="IMAP only, when chosen")
    archiveMailPath = serializers.CharField(required=False, help_text="IMAP only, when chosen")


class LastErrorSerializer(serializers.Serializer):
    """Ours (``error``, ``code``, ``time``) and EmailEngine's (``response``,
    ``serverResponseCode``): ``accounts.state.engine_error``."""

    error = serializers.CharField()
    code = serializers.CharField(required=False)
    time = serializers.DateTimeField(required=False)
    response = serializers.CharField(help_text="EmailEngine's name of the error in words")
    serverResponseCode = serializers.CharField(
        allow_blank=True, help_text="The server's response code (AUTHENTICATIONFAILED), else `code`")

    def to_representation(self, instance):
        return super().to_representation(account_state.engine_error(instance))


def public_server(section: dict | None, stored_secrets: Iterable[str] = ()) -> dict | None:
    """Rebuild a server section from an allow-list of keys: a secret can never slip through.
    ``stored_secrets``: the names (``pass``, ``accessToken``) of the secrets the account has
    for this section, shown as EmailEngine shows them, ``"******"``."""
    if not section:
        return None
    out = {key: section[key] for key in ("host", "port", "secure", "resyncDelay", "useAuthServer",
                                         "disableIMAP4rev2")
           if key in section}
    out.update({key: section[key] for key in MAIL_PATHS if section.get(key)})
    if section.get("auth"):
        out["auth"] = {"user": section["auth"].get("user", "")}
        for name in sorted(set(stored_secrets) & {"pass", "accessToken"}):
            out["auth"][name] = MASK
    if section.get("tls"):
        out["tls"] = {"rejectUnauthorized": section["tls"].get("rejectUnauthorized", True)}
        if section["tls"].get("minVersion"):
            out["tls"]["minVersion"] = section["tls"]["minVersion"]
    return out


class PublicOAuth2Serializer(serializers.Serializer):
    provider = serializers.CharField(help_text="The OAuth2 app id the mailbox signed in with")
    auth = PublicAuthSerializer()
    accessToken = serializers.CharField(required=False, help_text='"******" when one is stored')
    refreshToken = serializers.CharField(required=False,
                                         help_text='"******" when one is stored')
    expires = serializers.DateTimeField(required=False,
                                        help_text="When the current access token expires")
    scopes = serializers.ListField(child=serializers.CharField(), required=False)
    scope = serializers.ListField(child=serializers.CharField(), required=False,
                                  help_text="EmailEngine's name of `scopes` (the same list)")


def public_oauth2(account: EmailAccount, stored_secrets: Iterable[str] = ()) -> dict | None:
    """EmailEngine's ``oauth2`` block, rebuilt from an allow-list of keys: the tokens are
    sealed credentials and never on the account, but nothing else slips through either."""
    info = account.oauth2
    if not info:
        return None
    user = ((account.imap or {}).get("auth") or {}).get("user") \
        or ((account.smtp or {}).get("auth") or {}).get("user") or account.email
    out = {"provider": info.get("app", ""), "auth": {"user": user or ""}}
    if info.get("expires"):
        out["expires"] = info["expires"]
    scopes = str(info.get("scope") or "").split() or _app_scopes(account)
    if scopes:
        out["scopes"] = scopes
        out["scope"] = list(scopes)  # EmailEngine's spelling
    if info.get("useAuthServer"):
        out["useAuthServer"] = True
    for name in sorted(set(stored_secrets) & {"accessToken", "refreshToken"}):
        out[name] = MASK
    return out


def account_type(account: EmailAccount) -> str:
    """EmailEngine's ``type``: the OAuth2 app's provider (``gmail``, ``outlook``...), ``imap``
    for a password mailbox, ``sending`` for one with SMTP only."""
    if account.oauth2:
        return account.oauth2.get("provider") or "oauth2"
    return "imap" if account.imap else "sending"


class AccountCountersSerializer(serializers.Serializer):
    events = serializers.DictField(child=serializers.IntegerField(),
                                   help_text="Events recorded for the account, by name "
                                             "(those still kept: EVENT_RETENTION_DAYS)")


def _app_scopes(account: EmailAccount) -> list[str]:
    """A token answer without ``scope`` granted what was asked (RFC 6749 5.1): the app's."""
    app = registered_apps.app_of(account)
    return list(registered_apps.endpoints(app).scopes) if app else []


class IndexProgressSerializer(serializers.Serializer):
    indexed = serializers.IntegerField(source="index_indexed",
                                       help_text="Messages indexed so far")
    total = serializers.IntegerField(source="index_total",
                                     help_text="Messages the folders held when first listed "
                                               "(at the end: what the index holds)")
    complete = serializers.SerializerMethodField(
        help_text="The first index is complete (accountInitialized was sent); `state` is "
                  "already `connected` while history fills in behind")

    def get_complete(self, obj) -> bool:
        return obj.initialized_at is not None


class AccountSerializer(serializers.ModelSerializer):
    """An account as GET returns it: settings without secrets, plus live state."""

    account = serializers.CharField(source="account_id")
    imap = serializers.SerializerMethodField()
    smtp = serializers.SerializerMethodField()
    oauth2 = serializers.SerializerMethodField()
    lastError = LastErrorSerializer(source="last_error", allow_null=True)
    created = serializers.DateTimeField(source="created_at")
    updated = serializers.DateTimeField(source="updated_at")
    stateChanged = serializers.DateTimeField(source="state_changed_at")
    watchFolders = serializers.SerializerMethodField()
    initialized = serializers.DateTimeField(source="initialized_at", allow_null=True,
                                            help_text="When the first full sync finished")
    indexProgress = IndexProgressSerializer(source="*", help_text="The first index's progress")
    path = serializers.SerializerMethodField()
    notifyFrom = serializers.DateTimeField(source="notify_from", allow_null=True)
    syncFrom = serializers.DateTimeField(source="sync_from", allow_null=True)
    logs = serializers.BooleanField()
    expectedEmail = serializers.SerializerMethodField()
    webhooks = serializers.SerializerMethodField()
    subconnections = serializers.SerializerMethodField()
    imapIndexer = serializers.SerializerMethodField()
    locale = serializers.SerializerMethodField()
    tz = serializers.SerializerMethodField()
    proxy = serializers.SerializerMethodField()
    smtpEhloName = serializers.SerializerMethodField()
    webhooksCustomHeaders = serializers.SerializerMethodField()
    type = serializers.SerializerMethodField(
        help_text="imap, sending (SMTP only), or the OAuth2 provider (gmail, outlook...)")
    app = serializers.SerializerMethodField(help_text="OAuth2 mailboxes: the app id")
    counters = serializers.SerializerMethodField()
    sendOnly = serializers.SerializerMethodField(
        help_text="EmailEngine's: true for an account without IMAP (type `sending`)")
    smtpStatus = serializers.SerializerMethodField(
        help_text="EmailEngine's: the outcome of the last send through the account's own SMTP "
                  "server (not a gateway's), null before any: `{created (ms since the epoch), "
                  "status: ok|error, response, description, responseCode, code, command, "
                  "networkRouting}`")

    class Meta:
        model = EmailAccount
        fields = ["account", "name", "email", "type", "app", "state", "lastError",
                  "stateChanged", "imap", "smtp", "oauth2", "watchFolders", "copy",
                  "initialized", "indexProgress", "created", "updated", "path", "notifyFrom",
                  "syncFrom", "logs", "expectedEmail",
                  "webhooks", "webhooksCustomHeaders", "subconnections", "imapIndexer",
                  "locale", "tz", "proxy", "smtpEhloName", "counters", "sendOnly",
                  "smtpStatus"]

    def get_sendOnly(self, obj) -> bool:  # noqa: N802 (EmailEngine's field name)
        return not obj.imap

    @extend_schema_field(serializers.JSONField(allow_null=True))
    def get_smtpStatus(self, obj):  # noqa: N802 (EmailEngine's field name)
        return obj.smtp_status

    @extend_schema_field(serializers.ListField(child=serializers.DictField(
        child=serializers.CharField())))
    def get_webhooksCustomHeaders(self, obj):
        names = self.context.get("webhook_headers", {}).get(obj.pk, [])
        return [{"key": name, "value": MASK} for name in names]

    def _secrets(self, obj, section: str) -> list[str]:
        """Names of the account's stored secrets of ``section`` (context ``secrets``: the
        Credential names by account pk, read once for the page)."""
        names = self.context.get("secrets", {}).get(obj.pk, ())
        return [name.split(".", 1)[1] for name in names if name.startswith(f"{section}.")]

    def get_type(self, obj) -> str:
        return account_type(obj)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_app(self, obj):
        info = obj.oauth2 or {}
        app = info.get("app")
        return app if app and app != info.get("provider") else None

    @extend_schema_field(AccountCountersSerializer)
    def get_counters(self, obj):
        return {"events": self.context.get("counters", {}).get(obj.account_id, {})}

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_path(self, obj):
        return list(obj.path) if obj.path else ["*"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_expectedEmail(self, obj):
        return identity.pinned(obj)

    @extend_schema_field(serializers.CharField(
        allow_null=True, help_text="The webhook URL, the password of a user:password@ in it "
                                   "shown as ******"))
    def get_webhooks(self, obj):
        return without_password(obj.webhooks) or None  # stored masked; never shown otherwise

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_subconnections(self, obj):
        return (obj.ee_options or {}).get("subconnections")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_imapIndexer(self, obj):
        return (obj.ee_options or {}).get("imapIndexer")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_locale(self, obj):
        return (obj.ee_options or {}).get("locale")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_tz(self, obj):
        return (obj.ee_options or {}).get("tz")

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_proxy(self, obj):
        proxy = (obj.ee_options or {}).get("proxy")  # one stored before passwords were masked
        return without_password(proxy, loose=True) if proxy else proxy

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_smtpEhloName(self, obj):
        return (obj.ee_options or {}).get("smtpEhloName")

    def get_watchFolders(self, obj) -> list[str]:
        return list(obj.watch_folders or ["INBOX"])

    @extend_schema_field(PublicServerSerializer)
    def get_imap(self, obj):
        imap = public_server(obj.imap, self._secrets(obj, "imap"))
        if imap is not None and obj.paused:
            imap["disabled"] = True  # EmailEngine's name for the pause
        return imap

    @extend_schema_field(PublicServerSerializer(allow_null=True))
    def get_smtp(self, obj):
        return public_server(obj.smtp, self._secrets(obj, "smtp"))

    @extend_schema_field(PublicOAuth2Serializer(allow_null=True))
    def get_oauth2(self, obj):
        return public_oauth2(obj, self._secrets(obj, "oauth2"))


class AccountDetailQuerySerializer(QuerySerializer):
    quota = serializers.BooleanField(
        default=False, help_text="Ask the mail server for the storage quota (EmailEngine's "
                                 "`quota`): one round trip to it")


class AccountDetailSerializer(AccountSerializer):
    """``GET /v1/account/{account}``: the account, with EmailEngine's ``syncTime`` and, when
    asked, ``quota``."""

    syncTime = serializers.DateTimeField(
        allow_null=True, help_text="When the index last caught up with one of the account's "
                                   "folders (the newest `syncedAt`); null before any sync")
    quota = serializers.JSONField(
        required=False, help_text="With `?quota=true` only: `{usage, limit}` in bytes and "
                                  "`status` (\"53%\"), or false when the server tells none (no "
                                  "QUOTA, no storage limit) or cannot be asked now")

    class Meta(AccountSerializer.Meta):
        fields = [*AccountSerializer.Meta.fields, "syncTime", "quota"]


class AccountListItemSerializer(AccountSerializer):
    """One item of ``GET /v1/accounts``; ``syncTime`` comes from the view's context
    (``sync_times``: one query for the page, not one per account)."""

    syncTime = serializers.SerializerMethodField(
        help_text="EmailEngine's: when the index last caught up with one of the account's "
                  "folders, as `GET /v1/account/{account}` shows it; null before any sync")

    class Meta(AccountSerializer.Meta):
        fields = ["account", "name", "email", "type", "app", "state", "webhooks", "proxy",
                  "smtpEhloName", "counters", "syncTime", "lastError", "stateChanged",
                  "created", "initialized", "indexProgress"]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_syncTime(self, obj) -> str | None:  # noqa: N802 (EmailEngine's field name)
        return iso(self.context.get("sync_times", {}).get(obj.pk))


class AccountListSerializer(serializers.Serializer):
    accounts = AccountListItemSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField(help_text="0 when nothing matches, as EmailEngine")
    query = serializers.JSONField(help_text="The `query` filter, or false without one")
    state = serializers.CharField(help_text='The `state` filter, or "*" without one')


class AccountListQuerySerializer(PageQuerySerializer):
    state = serializers.ChoiceField(
        choices=EmailAccount.State.values, required=False,
        help_text="Only accounts in this state (`unset`: send-only accounts, without IMAP)")
    query = serializers.CharField(max_length=256, required=False,
                                  help_text="Substring of account id, name or email")


# --- verifyAccount ------------------------------------------------------------------------


@extend_schema_serializer(examples=[
    OpenApiExample("Check IMAP and SMTP", request_only=True, value={
        "imap": {"host": "imap.example.com", "port": 993, "secure": True,
                 "auth": {"user": "me@example.com", "pass": "secret"}},
        "smtp": {"host": "smtp.example.com", "port": 587, "secure": False,
                 "auth": {"user": "me@example.com", "pass": "secret"}},
        "mailboxes": False,
    }),
])
class VerifyAccountSerializer(StrictSerializer):
    imap = ImapServerSerializer(required=False)
    smtp = ServerSerializer(required=False)
    mailboxes = serializers.BooleanField(default=False, help_text="Also return the folder list")
    proxy = serializers.CharField(
        max_length=2048, required=False, allow_blank=True, allow_null=True,
        help_text="The proxy the checks connect through (EmailEngine's): socks5://, socks4://, "
                  "socks:// (SOCKS5) or http:// (HTTP CONNECT), with user:password@ when it "
                  "wants a login. Without one, the settings' proxyUrl while proxyEnabled")

    def validate_proxy(self, value):
        """A proxy URL ``tunnels.parse`` reads; "" or null for none (the tenant's applies)."""
        if value and value.strip():
            try:
                tunnels.parse(value)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from None
        return value
    smtpEhloName = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                         allow_null=True,
                                         help_text="EmailEngine's; accepted, not used")

    def validate(self, attrs):
        if not attrs.get("imap") and not attrs.get("smtp"):
            raise serializers.ValidationError({"imap": ["Give imap, smtp or both"]})
        for section in ("imap", "smtp"):
            if (attrs.get(section) or {}).get("useAuthServer"):
                raise serializers.ValidationError({f"{section}.useAuthServer": [
                    "Not taken here: the authentication server answers for a registered "
                    "account; give auth to test credentials"]})
        return attrs


class VerifyResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    error = serializers.CharField(
        required=False, help_text='EmailEngine\'s: "Command failed" when the IMAP server said '
                                  "NO, \"Invalid login: ...\" for SMTP, else our words")
    code = serializers.CharField(
        required=False, help_text="The server's response code (AUTHENTICATIONFAILED...) or "
                                  "nodemailer's SMTP code (EAUTH, ECONNECTION, ETLS, "
                                  "ETIMEDOUT), as EmailEngine; else emailapiCode")
    responseText = serializers.CharField(required=False, help_text="The server's words")
    responseCode = serializers.IntegerField(required=False)
    statusCode = serializers.IntegerField(
        required=False, help_text="EmailEngine's HTTP-style status of the failure, only when "
                                  "success is false: 401 credentials refused, 403 host not "
                                  "allowed, 504 no answer in time, 502 any other failure of "
                                  "the server or the way to it")
    reason = serializers.CharField(required=False, help_text="What failed, in our words")
    serverResponse = serializers.CharField(required=False,
                                           help_text="Ours: the IMAP server's whole answer")
    emailapiCode = serializers.CharField(
        required=False, help_text="Our code: AuthenticationFailed, ConnectionError, TLSError, "
                                  "Timeout, HostNotAllowed, ImapError, SmtpError")
    mailboxes = serializers.ListField(child=serializers.DictField(), required=False,
                                      help_text="Ours: path, delimiter, flags, specialUse")


class VerifyMailboxSerializer(serializers.Serializer):
    path = serializers.CharField()
    delimiter = serializers.CharField(allow_null=True)
    parentPath = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    listed = serializers.BooleanField()
    subscribed = serializers.BooleanField()
    specialUse = serializers.CharField(allow_null=True)
    specialUseSource = serializers.ChoiceField(choices=["extension", "name"], allow_null=True,
                                               help_text="extension: the server's flag; "
                                                         "name: guessed from the name")
    noInferiors = serializers.BooleanField(
        help_text="The server says the folder can have no subfolders (\\Noinferiors)")


@extend_schema_serializer(examples=[
    OpenApiExample("IMAP refused the password", response_only=True, value={
        "imap": {"success": False, "error": "Command failed", "code": "AUTHENTICATIONFAILED",
                 "responseText": "Authentication failed.",
                 "reason": "[AUTHENTICATIONFAILED] Authentication failed.",
                 "emailapiCode": "AuthenticationFailed"},
        "smtp": {"success": True},
    }),
])
class VerifyResponseSerializer(serializers.Serializer):
    imap = VerifyResultSerializer(required=False)
    smtp = VerifyResultSerializer(required=False)
    mailboxes = VerifyMailboxSerializer(many=True, required=False,
                                        help_text="With mailboxes: true, EmailEngine's list")


class AccountActionSerializer(StrictSerializer):
    """Body of reconnect/pause/resume: empty, or EmailEngine's ``{"reconnect": true}``."""

    reconnect = serializers.BooleanField(required=False)


class ReconnectSerializer(serializers.Serializer):
    reconnect = serializers.BooleanField()


class SyncRequestSerializer(StrictSerializer):
    sync = serializers.BooleanField(default=False, help_text="Only sync if true")


class SyncResponseSerializer(serializers.Serializer):
    sync = serializers.BooleanField(help_text="Whether a sync was asked for")


class FlushRequestSerializer(StrictSerializer):
    flush = serializers.BooleanField(default=False, help_text="Only flush if true")
    notifyFrom = serializers.DateTimeField(
        required=False, allow_null=True,
        help_text="No messageNew for messages older than this (default: now)")
    imapIndexer = serializers.ChoiceField(choices=["full", "fast"], required=False,
                                          help_text="Accepted and stored (the index is full)")
    syncFrom = serializers.DateTimeField(required=False, allow_null=True,
                                         help_text="History from before this day is not "
                                                   "indexed in the rebuild")


class FlushResponseSerializer(serializers.Serializer):
    flush = serializers.BooleanField(help_text="Whether a flush was done")
