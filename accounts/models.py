"""Tenants, their people and API tokens, and the mailboxes they register.

A ``Tenant`` (organization) owns everything else: every query the API makes starts from the
caller's tenant, so another tenant's row is simply not found (404), never "forbidden".

The registered mailbox is called ``EmailAccount`` (EmailEngine's "account"); "mailbox" in the
API means an IMAP folder. Its secrets live apart, in ``Credential`` rows holding only sealed
values (``accounts.crypto``), so no serializer of an account can ever include one by accident.
"""

from __future__ import annotations

import functools

from django.apps import apps
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from emailapi.lib.rows import ModelColumns, prepared_rows


class Tenant(models.Model):
    class Status(models.TextChoices):
        TRIAL = "trial"
        ACTIVE = "active"
        EXPIRED = "expired"
        SUSPENDED = "suspended"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The paid plan's name and limits (``accounts.plans``); a null limit means "no limit", and
    # a null rate falls back to EMAILAPI_RATE_LIMIT.
    plan = models.CharField(max_length=32, blank=True, default="")
    max_mailboxes = models.PositiveIntegerField(null=True, blank=True)
    api_rate_limit = models.PositiveIntegerField(null=True, blank=True)
    # Why an operator suspended the tenant: shown to its users on the dashboard.
    suspended_reason = models.CharField(max_length=500, blank=True, default="")
    # Mailboxes of this tenant may use IMAP/SMTP servers on internal addresses (loopback,
    # private, link-local...), which are refused otherwise (accounts/mail_hosts.py). For an
    # on-premise customer whose mail server is inside the network this service runs in.
    mail_allow_private = models.BooleanField(
        "mail servers on internal addresses", default=False,
        help_text="Allow this organization's mailboxes to use IMAP/SMTP servers on "
                  "loopback, private, link-local or other internal addresses (normally "
                  "refused, so that nobody can reach our own network through a mailbox).")

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager):
    """Users sign in with their email address; there is no separate username."""

    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    username = None
    email = models.EmailField(unique=True)
    # Set when the user follows the link mailed at sign-up (or an invitation, which proves it).
    email_verified_at = models.DateTimeField(null=True, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    def __str__(self) -> str:
        return self.email


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        VIEWER = "viewer"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")
        ]


class Invitation(models.Model):
    """An invitation to join a tenant, pending until the invited person accepts it.

    Inviting makes neither a user nor a membership: the address stays free to sign up or reset
    a password like any other, and someone who already has an account joins only by accepting
    (``accounts.web.invitations``). The emailed link is signed and names this row and its
    ``key``; sending the invitation again replaces the key, so older links stop working. An
    accepted or cancelled invitation is deleted."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Membership.Role.choices,
                            default=Membership.Role.VIEWER)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    key = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "email"], name="invitation_unique_email")
        ]

    def __repr__(self) -> str:  # never the key
        return f"<Invitation of {self.email} to tenant {self.tenant_id}>"


class ApiToken(models.Model):
    """A bearer token. The token itself is shown once; only its SHA-256 is kept."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=200)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    # EmailEngine's account token: usable only on the routes of this one account (its
    # ``{account}``); empty: the whole tenant.
    account_id = models.CharField(max_length=256, blank=True, default="")
    # EmailEngine's ``metadata``: the caller's own JSON text, kept and shown as given.
    metadata = models.TextField(blank=True, default="")
    # EmailEngine's ``expires``: from this moment the token opens nothing (null: never). Set
    # only when the token is made, so a copy of the row (the token cache) holds it too.
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired()

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @classmethod
    def live(cls, **filters):
        """The tokens that still open the API: neither revoked nor expired (as EmailEngine
        drops an expired token from its lists)."""
        unexpired = models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        return cls.objects.filter(unexpired, revoked_at__isnull=True, **filters)


class EmailAccount(models.Model):
    """A registered mailbox: connection settings (no secrets) and its live state."""

    class State(models.TextChoices):
        INIT = "init"
        CONNECTING = "connecting"
        SYNCING = "syncing"
        CONNECTED = "connected"
        AUTHENTICATION_ERROR = "authenticationError"
        CONNECT_ERROR = "connectError"
        DISCONNECTED = "disconnected"
        PAUSED = "paused"
        # EmailEngine's: no IMAP settings, the account only sends (``imap: false``).
        UNSET = "unset"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="email_accounts")
    account_id = models.CharField(max_length=256)  # the customer's id (EmailEngine's "account")
    name = models.CharField(max_length=256, blank=True, default="")
    email = models.CharField(max_length=320, blank=True, default="")
    # {"host", "port", "secure", "auth": {"user"}, "tls": {...}}: never a password.
    imap = models.JSONField(null=True, blank=True)
    smtp = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=32, choices=State.choices, default=State.INIT)
    last_error = models.JSONField(null=True, blank=True)
    state_changed_at = models.DateTimeField(default=timezone.now)
    # Bumped whenever connection settings or credentials change, so a worker holding an old
    # connection knows to reconnect with the new ones.
    config_version = models.PositiveIntegerField(default=1)
    # Set once a bounce of one of its messages was recorded (``mailboxes.models.Bounce``): a
    # message read of an account without is spared the query for its ``bounces``.
    has_bounces = models.BooleanField(default=False)
    # Asked for by the API (pause/resume); ``state`` shows what the worker actually does.
    paused = models.BooleanField(default=False)
    # Folders kept open with IDLE for instant notice; the others are polled.
    watch_folders = models.JSONField(default=list, blank=True)
    # Store a copy of sent mail in the Sent folder (off for servers that do it themselves).
    copy = models.BooleanField(default=True)
    initialized_at = models.DateTimeField(null=True, blank=True)
    # The first index's progress (``accounts.state.note_index_progress``): messages indexed
    # so far, of the messages the folders held (EXISTS) when the first pass listed them.
    index_indexed = models.PositiveBigIntegerField(default=0)
    index_total = models.PositiveBigIntegerField(default=0)
    # OAuth2 mailboxes: {"app", "provider", "expires", "scope", "reauthRequired"?}; the tokens
    # themselves are ``oauth2.accessToken``/``oauth2.refreshToken`` credentials. Null: password.
    oauth2 = models.JSONField(null=True, blank=True)
    # EmailEngine's account fields (issue 16). ``path``: the folders EmailEngine would watch,
    # as given (null: "*"); the first listed one becomes ``watch_folders``.
    path = models.JSONField(null=True, blank=True)
    # No ``messageNew`` for a message whose internal date is before this.
    notify_from = models.DateTimeField(null=True, blank=True)
    # History (messages already there at a folder's first sync) from before this day is not
    # indexed; mail arriving later always is.
    sync_from = models.DateTimeField(null=True, blank=True)
    logs = models.BooleanField(default=False)
    # The per-account webhook URL; ``webhook_subscription`` is the id of the subscription of
    # this account's events made from it (webhooks app), so it follows the URL.
    webhooks = models.CharField(max_length=2048, blank=True, default="")
    webhook_subscription = models.UUIDField(null=True, blank=True)
    # EmailEngine's options kept as given: locale and tz (the quoted date of an inline reply
    # or forward: mailboxes.compose), proxy (masked; its password is the proxy.pass
    # credential: accounts.mail_proxy); subconnections, imapIndexer and smtpEhloName are
    # echoed with no effect here (README "Coming from EmailEngine" says why for each).
    ee_options = models.JSONField(default=dict, blank=True)
    # EmailEngine's ``smtpStatus``: the outcome of the account's last send through its own
    # SMTP server (``mailboxes.smtp_status``), written where the attempt ends; null before any.
    smtp_status = models.JSONField(null=True, blank=True)
    # Start of the current failure streak, so its event is raised once, not on every retry.
    auth_failing_since = models.DateTimeField(null=True, blank=True)
    connect_failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "account_id"], name="email_account_unique_id")
        ]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.account_id

    @classmethod
    def of_tenant(cls, tenant, account_id: str) -> EmailAccount | None:
        """The tenant's mailbox with this id, or None: the one lookup of an account by the id a
        caller gives (API, dashboard, listings), so another tenant's is never found."""
        # One fixed, prepared statement (emailapi.lib.rows): every account-scoped API request
        # makes this lookup first, and the ORM's compilation of it cost more than the query.
        columns = _account_columns()
        rows = prepared_rows(f"SELECT {columns.select} FROM {cls._meta.db_table} a "
                             f"WHERE a.tenant_id = %s AND a.account_id = %s",
                             [getattr(tenant, "pk", tenant), account_id])
        return columns.instance(rows[0]) if rows else None

    @classmethod
    def for_session(cls, pk: int, leave_out: tuple[str, ...],
                    with_tenant: bool = False) -> EmailAccount | None:
        """The account's row as an IMAP worker's session reads it, at each connect and again
        after an idling session let go of it: without the fields in ``leave_out`` (deferred,
        as ``defer()`` leaves them), with its tenant when asked. One fixed, prepared statement:
        a worker restarted with thousands of accounts reads one per account, and the ORM's
        compilation of it cost more than PostgreSQL's answer."""
        columns = _account_columns(leave_out)
        if not with_tenant:
            rows = prepared_rows(f"SELECT {columns.select} FROM {cls._meta.db_table} a "
                                 f"WHERE a.id = %s", [pk])
            return columns.instance(rows[0]) if rows else None
        tenant = _tenant_columns()
        # With the tenant, its proxy (settings proxyUrl while proxyEnabled, or NULLs, and when its
        # route was set: ``accounts.secret_routes``): what
        # ``accounts.mail_proxy.connection_proxy`` reads at every connect, in this same statement.
        rows = prepared_rows(f"SELECT {columns.select}, {tenant.select}, s.proxy_url, "
                             f"s.sealed_proxy_password, s.proxy_route_set_at "
                             f"FROM {cls._meta.db_table} a JOIN {Tenant._meta.db_table} t "
                             f"ON t.id = a.tenant_id LEFT JOIN {_engine_settings_table()} s "
                             f"ON s.tenant_id = a.tenant_id AND s.proxy_enabled "
                             f"AND s.proxy_url <> '' WHERE a.id = %s", [pk])
        if not rows:
            return None
        row = rows[0]
        account = columns.instance(row[:len(columns)])
        cls.tenant.field.set_cached_value(account, tenant.instance(
            row[len(columns):len(columns) + len(tenant)]))
        proxy_url, sealed_password, set_at = row[len(columns) + len(tenant):]
        account.tenant_proxy_row = (proxy_url, sealed_password, set_at) if proxy_url else None
        return account


class OAuth2App(models.Model):
    """A tenant's OAuth2 client registered at a provider (Google, Microsoft, Yahoo, or any
    authorization server), used by the hosted connect link to sign mailboxes in.

    The client secret is sealed (``accounts.crypto``, context ``tenant:<t>/oauth2app:<id>``)
    and never leaves through the API; the rest is plain settings."""

    class Provider(models.TextChoices):
        GMAIL = "gmail"
        OUTLOOK = "outlook"
        YAHOO = "yahoo"
        GENERIC = "generic"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="oauth2_apps")
    app_id = models.CharField(max_length=64)
    name = models.CharField(max_length=256, blank=True, default="")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    client_id = models.CharField(max_length=512)
    client_secret_sealed = models.TextField()
    # Empty: the provider preset's (accounts.oauth2.presets); required for ``generic``.
    authorize_url = models.CharField(max_length=1024, blank=True, default="")
    token_url = models.CharField(max_length=1024, blank=True, default="")
    scopes = models.JSONField(default=list, blank=True)
    # The callback registered at the provider; empty: this service's own callback URL.
    redirect_url = models.CharField(max_length=1024, blank=True, default="")
    # Mail servers of ``generic`` apps ({"host", "port", "secure", "tls"}); presets carry theirs.
    imap = models.JSONField(null=True, blank=True)
    smtp = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "app_id"], name="oauth2_app_unique_id")
        ]
        ordering = ["created_at", "id"]

    def __repr__(self) -> str:
        return f"<OAuth2App {self.app_id} ({self.provider}) of tenant {self.tenant_id}>"


class Credential(models.Model):
    """One sealed secret of an account, e.g. ``imap.pass`` or ``smtp.pass``."""

    email_account = models.ForeignKey(
        EmailAccount, on_delete=models.CASCADE, related_name="credentials"
    )
    name = models.CharField(max_length=64)
    sealed = models.TextField()
    updated_at = models.DateTimeField(default=timezone.now)
    # When a person last gave it (an API call, a form, a sign-in), not when a refresh
    # rotated it: through the tenant's proxy, a secret given before that proxy was set goes
    # only over TLS that verifies the server (``accounts.secret_routes``). Null: not known.
    given_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["email_account", "name"], name="credential_unique_name")
        ]

    def __repr__(self) -> str:
        # Never let a debug print show even the sealed value.
        return f"<Credential {self.name} of account {self.email_account_id}>"


@functools.cache
def _account_columns(leave_out: tuple[str, ...] = ()) -> ModelColumns:
    """``EmailAccount``'s columns for ``of_tenant`` and ``for_session`` (built once the model
    exists)."""
    return ModelColumns(EmailAccount, "a", leave_out)


@functools.cache
def _engine_settings_table() -> str:
    """The table of the tenant's settings (``webhooks.models.EngineSettings``, in a lower layer
    that names this app's models only by string), joined by ``EmailAccount.for_session``."""
    return apps.get_model("webhooks", "EngineSettings")._meta.db_table


@functools.cache
def _tenant_columns() -> ModelColumns:
    return ModelColumns(Tenant, "t")


class AuthServer(models.Model):
    """A tenant's authentication server (EmailEngine's ``authServer`` setting): the URL its
    mailboxes with ``useAuthServer`` ask for their credentials at every connection
    (``accounts.auth_server``). Sealed whole: a ``user:password@`` in it is a secret."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, primary_key=True,
                                  related_name="auth_server")
    sealed_url = models.TextField()
    updated_at = models.DateTimeField(default=timezone.now)
