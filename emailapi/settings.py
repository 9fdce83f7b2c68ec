"""Django settings for emailapi, read entirely from environment variables.

README.md lists every variable with its default. ``emailapi.env`` parses them and raises
``ImproperlyConfigured`` on a malformed value, so a typo stops start-up instead of being ignored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from emailapi.env import (
    env_addresses,
    env_bool,
    env_int,
    env_list,
    env_networks,
    env_seconds_list,
    env_str,
    parse_database_url,
    secret_from_env_or_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("EMAILAPI_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDR networks);
# from anyone else those headers are dropped (emailapi/proxies.py, applied by emailapi/server.py).
EMAILAPI_TRUSTED_PROXIES = env_networks("EMAILAPI_TRUSTED_PROXIES", "")

# One operator secret keys everything: credential encryption (accounts.crypto) and Django's
# signing key are both derived from it, each under its own label, so neither key is the other.
EMAILAPI_SECRET = secret_from_env_or_file("EMAILAPI_SECRET", VAR_DIR / "secret.key")
SECRET_KEY = hashlib.sha256(b"emailapi django signing\0" + EMAILAPI_SECRET.encode()).hexdigest()

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_rq",
    "social_django",
    "emailapi",
    "accounts",
    "mailboxes",
    "webhooks",
]

MIDDLEWARE = [
    "emailapi.api.request_metrics.request_metrics",  # first: it times the whole chain
    "emailapi.api.middleware.BodySizeLimitMiddleware",
    "emailapi.form_input.FormInputMiddleware",  # NUL in a form field: 400 (sync, as the above)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# The /v1 JSON API's own chain under ASGI (emailapi/api/asgi_handler.py): body limit and
# security headers, without a thread switch per middleware.
API_MIDDLEWARE = ["emailapi.api.request_metrics.request_metrics",  # async too: no thread hop
                  "emailapi.api.middleware.ApiMiddleware"]

ROOT_URLCONF = "emailapi.urls"
ASGI_APPLICATION = "emailapi.asgi.application"
WSGI_APPLICATION = None
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.web.context.dashboard",
            ],
        },
    },
]

# PostgreSQL connections each process keeps in its pool (emailapi/env.py, emailapi/lib/dbpool.py).
DB_POOL_SIZE = env_int("EMAILAPI_DB_POOL_SIZE", 10, minimum=1)
# Seconds a web request waits for a free connection before it answers 503 ServiceUnavailable;
# background workers, with no client waiting, wait DB_WORKER_POOL_WAIT.
DB_POOL_WAIT = env_int("EMAILAPI_DB_POOL_WAIT", 2, minimum=1)
DB_WORKER_POOL_WAIT = 20
# Seconds a web process's pool may stay exhausted (every connection held, none coming back,
# while the database itself answers) before the process exits so that its supervisor starts
# a fresh one (emailapi/watchdog.py). 0 turns the watchdog off.
DB_POOL_WATCHDOG = env_int("EMAILAPI_DB_POOL_WATCHDOG", 60, minimum=0)
# Seconds a statement of a web request may take (the server's statement_timeout; a server that
# does not even answer its cancellation is given up 5 s later: emailapi/lib/pgdeadline.py),
# and of a long-running worker's (imapworker, sendscheduler, webhookdispatcher). 0 = no bound.
DB_QUERY_TIMEOUT = env_int("EMAILAPI_DB_QUERY_TIMEOUT", 30, minimum=0)
DB_WORKER_QUERY_TIMEOUT = env_int("EMAILAPI_DB_WORKER_QUERY_TIMEOUT", 120, minimum=0)
DATABASES = {"default": parse_database_url(env_str("DATABASE_URL"), VAR_DIR / "emailapi.sqlite3",
                                           pool_size=DB_POOL_SIZE, pool_wait=DB_WORKER_POOL_WAIT)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from app folders: no collectstatic step for `make run` to forget.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Redis: coordination and cache only; Postgres holds everything that must not be lost.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600}
    for name in ("default", "webhooks", "send", "export")
}

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- API
# Largest request body any /v1 route accepts (bytes); a view may lower it. Larger bodies get 413
# before they are parsed.
EMAILAPI_MAX_BODY_SIZE = env_int("EMAILAPI_MAX_BODY_SIZE", 5 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = EMAILAPI_MAX_BODY_SIZE
# Requests per minute per tenant; 0 turns the limit off.
EMAILAPI_RATE_LIMIT = env_int("EMAILAPI_RATE_LIMIT", 6000, minimum=0)
# Seconds a web process remembers an authenticated token (accounts/token_cache.py); a token
# revoked through another process keeps working at most this long. 0 turns it off.
EMAILAPI_TOKEN_CACHE_SECONDS = env_int("EMAILAPI_TOKEN_CACHE_SECONDS", 5, minimum=0)
# Seconds a message's HTML may take to sanitize (webSafeHtml, the dashboard's message page,
# notifyWebSafeHtml) in a helper process (mailboxes/sanitize_pool.py), and at most as long to
# wait for a free helper; past it the helper is killed and the message's text is shown.
HTML_SANITIZE_SECONDS = env_int("EMAILAPI_HTML_SANITIZE_SECONDS", 2, minimum=1)
# Seconds that verifyAccount waits for each of IMAP and SMTP.
EMAILAPI_VERIFY_TIMEOUT = env_int("EMAILAPI_VERIFY_TIMEOUT", 15, minimum=1)
# IMAP/SMTP hosts on loopback, private, link-local, CGNAT, multicast or reserved addresses are
# refused (400 HostNotAllowed; the worker and the sender refuse to connect) unless this is
# true (local development, tests) or the tenant is allowed in the admin (accounts/mail_hosts.py).
EMAILAPI_MAIL_ALLOW_PRIVATE = env_bool("EMAILAPI_MAIL_ALLOW_PRIVATE", False)

# --- OAuth2 mailboxes and connect links (accounts/oauth2/; README "OAuth2 mailboxes")
# Public base URL of this service (e.g. https://mail-api.example.com): connect links and the
# OAuth2 callback are built on it. Empty: the host of the API request that made the link.
EMAILAPI_SERVICE_URL = env_str("EMAILAPI_SERVICE_URL", "").rstrip("/")
# Seconds a connect link (POST /v1/authentication/form) stays valid.
EMAILAPI_CONNECT_LINK_TTL = env_int("EMAILAPI_CONNECT_LINK_TTL", 3600, minimum=60)
# Sign-in attempts (password form submissions, OAuth2 starts) one connect link allows per
# minute; beyond, 429 with Retry-After (each password attempt logs in to a server for real).
EMAILAPI_CONNECT_ATTEMPTS_PER_MINUTE = env_int("EMAILAPI_CONNECT_ATTEMPTS_PER_MINUTE", 5,
                                               minimum=1)
# Access tokens are refreshed when they expire within this many seconds.
EMAILAPI_OAUTH2_REFRESH_MARGIN = env_int("EMAILAPI_OAUTH2_REFRESH_MARGIN", 300, minimum=0)
# Allow http:// (not https) authorize/token URLs for generic OAuth2 apps (tests, on-premise).
EMAILAPI_OAUTH2_ALLOW_HTTP = env_bool("EMAILAPI_OAUTH2_ALLOW_HTTP", False)

# --- IMAP command connections of the web process (mailboxes/command_pool.py)
IMAP_COMMAND_CONNECTIONS = env_int("EMAILAPI_IMAP_COMMAND_CONNECTIONS", 3, minimum=1)
IMAP_COMMAND_IDLE = env_int("EMAILAPI_IMAP_COMMAND_IDLE", 10, minimum=0)
IMAP_COMMAND_TIMEOUT = env_int("EMAILAPI_IMAP_COMMAND_TIMEOUT", 10, minimum=1)

# Prefix of Redis pub/sub channel names (they are shared by every database of one Redis).
EMAILAPI_REDIS_PREFIX = env_str("EMAILAPI_REDIS_PREFIX", "emailapi")

# --- Opening IMAP connections (workers, API calls, verifyAccount): seconds each phase may take
# (each also capped by the caller's own timeout), so a server that accepts and never answers,
# or greets and then hangs, is given up on quickly.
IMAP_CONNECT_TIMEOUT = env_int("EMAILAPI_IMAP_CONNECT_TIMEOUT", 10, minimum=1)
IMAP_GREETING_TIMEOUT = env_int("EMAILAPI_IMAP_GREETING_TIMEOUT", 10, minimum=1)
IMAP_TLS_TIMEOUT = env_int("EMAILAPI_IMAP_TLS_TIMEOUT", 10, minimum=1)
IMAP_LOGIN_TIMEOUT = env_int("EMAILAPI_IMAP_LOGIN_TIMEOUT", 15, minimum=1)

# --- IMAP workers (manage.py imapworker; README "The IMAP engine")
# A worker that dies stops renewing its leases; others take its accounts within TTL + one tick.
IMAP_LEASE_TTL = env_int("EMAILAPI_LEASE_TTL", 20, minimum=3)
IMAP_CLAIM_INTERVAL = env_int("EMAILAPI_CLAIM_INTERVAL", 2, minimum=1)
# ...or within this many seconds (plus half a second) when it dies: Redis drops a dead
# process's presence subscription at once, and the others look for it twice a second
# (mailboxes.worker.leases, imap_worker). 0, or not under the TTL: off.
IMAP_WORKER_GONE_AFTER = env_int("EMAILAPI_WORKER_GONE_AFTER", 5, minimum=0)
IMAP_MAX_ACCOUNTS = env_int("EMAILAPI_MAX_ACCOUNTS_PER_WORKER", 10000, minimum=1)
IMAP_POOL_SIZE = env_int("EMAILAPI_IMAP_POOL_SIZE", 8, minimum=1)
# After a connect wave, freeze the worker's long-lived objects out of the garbage collector's
# full walks, which at 10,000 accounts paused every thread for a second or more
# (mailboxes.worker.collector).
IMAP_GC_FREEZE = env_bool("EMAILAPI_IMAP_GC_FREEZE", True)
# Seconds a worker waits, after login, for the answer to a command whose work grows with the
# mailbox (SELECT, FETCH, SEARCH, STATUS, LIST...; mailboxes/imap/client.py SLOW_COMMANDS).
# Dovecot's first FETCH of a session on a 1,000,000-message folder said nothing for ~20 s; with
# the 15 s that connects and other commands get, such an account reconnected forever. 120 s is
# six times that; a server silent for longer holds one sync thread that long per try (those
# tries back off, and get few of the pool's threads at once: README "The IMAP engine").
IMAP_READ_TIMEOUT = env_int("EMAILAPI_IMAP_READ_TIMEOUT", 120, minimum=1)
# Threads per worker that only open connections (TCP, TLS, greeting, login), apart from the
# pool: a hung server holds one of these for its phase timeouts, never a sync thread.
IMAP_CONNECT_THREADS = env_int("EMAILAPI_IMAP_CONNECT_THREADS", 16, minimum=1)
# Connects a worker starts per second to one mail server (host:port), so that a worker starting
# with thousands of accounts does not stampede it; 0: as fast as the connect threads go.
IMAP_CONNECTS_PER_SECOND = env_int("EMAILAPI_IMAP_CONNECTS_PER_SECOND", 50, minimum=0)
# IDLE is re-issued before the 30-minute limit servers may enforce (RFC 2177).
IMAP_IDLE_RENEW = env_int("EMAILAPI_IDLE_RENEW", 25 * 60, minimum=1)
# After a change, the watched folder is synced again this many seconds into the IDLE (0:
# never): a change that lands as Dovecot hands the idling session to imap-hibernate is
# otherwise not reported until the next poll. Above the server's imap_hibernate_timeout
# (Dovecot's documented example: 5 s).
IMAP_IDLE_RECHECK = env_int("EMAILAPI_IDLE_RECHECK", 15, minimum=0)
# Folders other than the watched one are checked with STATUS this often (seconds).
IMAP_POLL_INTERVAL = env_int("EMAILAPI_POLL_INTERVAL", 60, minimum=1)
# Ask servers that offer it for NOTIFY (RFC 5465: changes in every folder wake the IDLE).
# Off: only the watched folder wakes IDLE and the poll finds the rest; Dovecot can then hand
# idle sessions to imap-hibernate (~26 KB each instead of ~780 KB: it cannot with NOTIFY on).
IMAP_NOTIFY = env_bool("EMAILAPI_IMAP_NOTIFY", True)
# With NOTIFY the poll only backs it up: it runs this many times less often.
IMAP_NOTIFY_POLL_FACTOR = env_int("EMAILAPI_NOTIFY_POLL_FACTOR", 5, minimum=1)
# Seconds before reconnecting: each wait doubles from the first value up to the MAX one and is
# jittered by +-20 % (mailboxes/worker/connection.py). A failed connect or a lost connection:
IMAP_RECONNECT_DELAY = env_int("EMAILAPI_IMAP_RECONNECT_DELAY", 1, minimum=1)
IMAP_RECONNECT_MAX_DELAY = env_int("EMAILAPI_IMAP_RECONNECT_MAX_DELAY", 300, minimum=1)
# A refused login (wrong credentials need a human; quick retries may get the account locked):
IMAP_AUTH_RETRY_DELAY = env_int("EMAILAPI_IMAP_AUTH_RETRY_DELAY", 60, minimum=1)
IMAP_AUTH_RETRY_MAX_DELAY = env_int("EMAILAPI_IMAP_AUTH_RETRY_MAX_DELAY", 3600, minimum=1)
# The database or Redis unreachable (the session is kept; nothing is wrong with the mailbox):
IMAP_STORE_RETRY_DELAY = env_int("EMAILAPI_IMAP_STORE_RETRY_DELAY", 1, minimum=1)
IMAP_STORE_RETRY_MAX_DELAY = env_int("EMAILAPI_IMAP_STORE_RETRY_MAX_DELAY", 30, minimum=1)
# A connection that lived this many seconds starts the count again (stops accept-then-drop loops).
IMAP_RECONNECT_RESET_AFTER = env_int("EMAILAPI_IMAP_RECONNECT_RESET_AFTER", 300, minimum=1)

# --- Sending (mailboxes/sending.py; README "Sending mail")
# Seconds to wait before each retry of a transient SMTP failure (network, 4xx): by default
# 8 attempts over about 3.6 hours. ``deliveryAttempts`` beyond it repeats the last delay.
SEND_RETRY_SCHEDULE = env_seconds_list("EMAILAPI_SEND_RETRY_SCHEDULE",
                                       "10,30,120,600,1800,3600,7200")
# Seconds a send job holds its claim on an entry; a job killed mid-send is retried after it.
SEND_LEASE = env_int("EMAILAPI_SEND_LEASE", 600, minimum=30)
# Seconds between sweeps that enqueue due entries (sendAt, retries, lost jobs).
SEND_SWEEP_INTERVAL = env_int("EMAILAPI_SEND_SWEEP_INTERVAL", 5, minimum=1)
# A refused SMTP login is retried (the password may be fixed meanwhile) this many attempts.
SEND_AUTH_ATTEMPTS = env_int("EMAILAPI_SEND_AUTH_ATTEMPTS", 3, minimum=1)
# Seconds each database step after the server accepted a message is retried through
# database faults (never past the entry's lease: after it, the message could go out twice).
SEND_RECORD_RETRY = env_int("EMAILAPI_SEND_RECORD_RETRY", 60, minimum=0)
# The machine's addresses SMTP connections may go out from (mailboxes/local_address.py): a
# send's ``localAddress`` picks one of these; without it, one alone is used, and of several
# each account keeps its own. Empty: the operating system chooses, and ``localAddress`` is
# only noted. An address the machine does not have (any more) is skipped with a warning.
EMAILAPI_SMTP_LOCAL_ADDRESSES = env_addresses("EMAILAPI_SMTP_LOCAL_ADDRESSES")
# IP addresses of this machine IMAP connections (the worker's, the API's) may go out from
# (EmailEngine's localAddresses with imapStrategy): one listed is every account's, several
# give each account its own, kept (rendezvous hashing). Empty: the operating system chooses.
EMAILAPI_IMAP_LOCAL_ADDRESSES = env_addresses("EMAILAPI_IMAP_LOCAL_ADDRESSES")
# A fetch of a tracking image or link by a scanner (Google's crawler addresses, a host whose
# reverse DNS name is Barracuda's or SPFBL's) records no trackOpen/trackClick, as in EmailEngine
# (mailboxes/automated_fetches.py); false records every fetch. The reverse lookup it makes (an
# address -> a name, OSError for none; tests name another) is waited for at most
# TRACKING_REVERSE_DNS_TIMEOUT seconds, after the image or redirect is served.
TRACKING_SKIP_AUTOMATED = env_bool("EMAILAPI_TRACKING_SKIP_AUTOMATED", True)
TRACKING_REVERSE_DNS = "mailboxes.automated_fetches.system_reverse_name"
TRACKING_REVERSE_DNS_TIMEOUT = 1.0
# Fetches of tracking links kept in Redis while the database is unavailable, to be recorded once
# it is back (mailboxes/tracking_spool.py), at most: a fetch past this is logged and dropped, so
# that fetching links in a loop during an outage cannot fill Redis (an entry is some 300 bytes
# plus the user agent, at most 1024 characters, and a click's URL). 0: nothing is kept.
TRACKING_SPOOL_MAX = env_int("EMAILAPI_TRACKING_SPOOL_MAX", 10_000, minimum=0)

# --- Exports (mailboxes/exports.py; README "Bulk exports"), EmailEngine's defaults
# Seconds an export (its status and its file) is kept after it is created.
EXPORT_MAX_AGE = env_int("EMAILAPI_EXPORT_MAX_AGE", 24 * 3600, minimum=60)
# Exports an account may have queued or processing at once; one more is a 429 TooManyExports.
EXPORT_MAX_CONCURRENT = env_int("EMAILAPI_EXPORT_MAX_CONCURRENT", 2, minimum=1)
# With includeAttachments, messages larger than this (bytes) are skipped and counted.
EXPORT_MAX_MESSAGE_SIZE = env_int("EMAILAPI_EXPORT_MAX_MESSAGE_SIZE", 50 * 1024 * 1024,
                                  minimum=1024)
# Seconds without progress after which a processing export is taken for one whose worker died
# (marked failed by the sweep); also the longest one message may take to export.
EXPORT_STALE_AFTER = env_int("EMAILAPI_EXPORT_STALE_AFTER", 300, minimum=10)
# Seconds one export job may run in all (rq's job timeout).
EXPORT_JOB_TIMEOUT = env_int("EMAILAPI_EXPORT_JOB_TIMEOUT", 6 * 3600, minimum=60)

# --- Live event stream (webhooks/stream/; README "Live events and the change feed")
# Seconds between the stream's checks for published events when the Redis doorbell is silent.
STREAM_POLL_INTERVAL = env_int("EMAILAPI_STREAM_POLL_INTERVAL", 2, minimum=1)
# Seconds of silence after which an SSE stream sends a keep-alive comment.
STREAM_KEEPALIVE = env_int("EMAILAPI_STREAM_KEEPALIVE", 15, minimum=1)
# A stream client is dropped when this many events wait for it in memory, or when more than
# STREAM_CLIENT_BUFFER bytes it has not read stay unsent for STREAM_SLOW_SECONDS.
STREAM_CLIENT_QUEUE = env_int("EMAILAPI_STREAM_CLIENT_QUEUE", 1000, minimum=1)
STREAM_CLIENT_BUFFER = env_int("EMAILAPI_STREAM_CLIENT_BUFFER", 1024 * 1024, minimum=1024)
STREAM_SLOW_SECONDS = env_int("EMAILAPI_STREAM_SLOW_SECONDS", 10, minimum=1)
# A streamed download (an attachment, a message's source) reads on from the mail server only
# while fewer than DOWNLOAD_CLIENT_BUFFER bytes wait unsent for its client, and a client that
# takes nothing for DOWNLOAD_STALL_SECONDS is cut off.
DOWNLOAD_CLIENT_BUFFER = env_int("EMAILAPI_DOWNLOAD_CLIENT_BUFFER", 1024 * 1024, minimum=16384)
DOWNLOAD_STALL_SECONDS = env_int("EMAILAPI_DOWNLOAD_STALL_SECONDS", 60, minimum=1)

# --- Webhooks (webhooks/; README "Webhooks")
# Deliveries to hosts that resolve to loopback, private, link-local, CGNAT, metadata,
# multicast or unspecified addresses are refused unless this is true (tests, on-premise hooks).
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
# Seconds before each retry of a failed delivery (each delay is jittered by +-20 %): by
# default 13 attempts over about 24 hours, then the delivery is ``failed``.
WEBHOOK_RETRY_SCHEDULE = env_seconds_list(
    "EMAILAPI_WEBHOOK_RETRY_SCHEDULE", "10,30,60,300,900,1800,3600,7200,14400,14400,21600,21600")
# A subscription whose deliveries keep failing this many seconds (no success between) is
# disabled, with a ``webhookDisabled`` event and ``disabledReason``.
WEBHOOK_DISABLE_AFTER = env_int("EMAILAPI_WEBHOOK_DISABLE_AFTER", 24 * 3600, minimum=1)
# Seconds to connect, and to wait for each read of the answer, per attempt.
WEBHOOK_TIMEOUT = env_int("EMAILAPI_WEBHOOK_TIMEOUT", 10, minimum=1)
# Delivery threads per ``webhookdispatcher`` process (one lane each at a time; a healthy
# subscription gets at most half, so its lanes in flight, not the receiver, bound its rate).
# The dispatcher's database pool is made at least this plus 2 (a lane holds a connection).
WEBHOOK_CONCURRENCY = env_int("EMAILAPI_WEBHOOK_CONCURRENCY", 32, minimum=2)
# How many ``webhookdispatcher`` processes ``serve`` starts: one delivers about 1,500 a
# second on two cores, two about 2,100 (bench/webhooks.py), each with its own database pool of
# WEBHOOK_CONCURRENCY + 2 connections, which is why the default is one.
WEBHOOK_DISPATCHERS = env_int("EMAILAPI_WEBHOOK_DISPATCHERS", 1, minimum=1)
# Seconds between the dispatcher's checks for events and due retries without a Redis doorbell.
WEBHOOK_POLL_INTERVAL = env_int("EMAILAPI_WEBHOOK_POLL_INTERVAL", 1, minimum=1)
# Delivered and failed delivery log rows are deleted after this many days.
WEBHOOK_DELIVERY_RETENTION_DAYS = env_int("EMAILAPI_WEBHOOK_DELIVERY_RETENTION_DAYS", 7,
                                          minimum=1)
# Published events (the outbox: change feed, stream resume) are deleted this many days after
# publication, once no delivery still owes them. The change feed answers 410 CursorExpired
# for cursors older than this; the webhook dispatcher does the pruning.
EVENT_RETENTION_DAYS = env_int("EMAILAPI_EVENT_RETENTION_DAYS", 7, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api.permissions.HasTokenScope"],
    "DEFAULT_THROTTLE_CLASSES": ["emailapi.api.throttling.TenantRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["emailapi.api.renderers.FastJSONRenderer"],  # DRF's, by orjson
    "DEFAULT_PARSER_CLASSES": ["emailapi.api.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "emailapi.api.negotiation.PlainJSONNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "emailapi.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "emailapi",
    "DESCRIPTION": (
        "REST API and webhooks for IMAP/SMTP mailboxes. Authenticate every /v1 request with "
        "`Authorization: Bearer <token>` (or `?access_token=<token>`). Errors share one shape, "
        "EmailEngine's: "
        '`{"statusCode": n, "error": "Not Found", "message": text, "code": MachineCode, '
        '"emailapiCode": OurCode, "details": {...}, "fields": [{"message", "key"}]}` '
        "(`code` is EmailEngine's code where it has one for the same condition, "
        "`emailapiCode` always ours)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "emailapi.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {"AccountStateEnum": "accounts.models.EmailAccount.State",
                            "RegistrationStateEnum": ["new", "existing"],
                            "OAuth2ProviderEnum": "accounts.models.OAuth2App.Provider",
                            "MarkupFormatEnum": ["html", "markdown"],
                            "WebhookFormatEnum": "webhooks.models.FORMATS"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # SafeFormatter: control characters in logged values are escaped (emailapi/lib/logsafe.py).
    "formatters": {"plain": {"class": "emailapi.lib.logsafe.SafeFormatter",
                             "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        # Django logs the full request on 4xx; our API errors are expected answers, not faults.
        "django.request": {"level": "ERROR"},
        "django.channels.server": {"level": "WARNING"},
    },
}

# --- Dashboard (accounts/web/; README "Dashboard, trials and plans")
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/dashboard"
# Sign-up confirmations, password resets and invitations. The console backend prints them to
# the web server's output; set EMAILAPI_EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend
# and EMAIL_HOST/EMAIL_PORT/EMAIL_HOST_USER/EMAIL_HOST_PASSWORD/EMAIL_USE_TLS to send for real.
EMAIL_BACKEND = env_str("EMAILAPI_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "emailapi <noreply@localhost>")
# Where the dashboard's "Request this plan" goes (accounts/web/views.py); empty: the operators
# (active superusers) of this installation.
EMAILAPI_SALES_EMAIL = env_str("EMAILAPI_SALES_EMAIL", "")

# No SECURE_PROXY_SSL_HEADER: Django would believe X-Forwarded-Proto from anyone. The scheme
# comes with the request, from a trusted proxy's X-Forwarded-Proto (EMAILAPI_TRUSTED_PROXIES).
if not DEBUG and env_bool("EMAILAPI_HTTPS", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True

# --- Operations: GET /metrics and the per-account protocol log (README "Metrics", "Account logs")
# A bearer token for Prometheus (operators): sees every tenant's metrics. Empty: only API
# tokens (metrics, read or api scope), which see their own tenant's series.
EMAILAPI_METRICS_TOKEN = env_str("EMAILAPI_METRICS_TOKEN", "")
if EMAILAPI_METRICS_TOKEN and len(EMAILAPI_METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("EMAILAPI_METRICS_TOKEN must be at least 16 characters")
# Where `serve`'s processes share their metrics (prometheus_client's multiprocess mode); emptied
# at every `serve` start.
EMAILAPI_METRICS_DIR = Path(env_str("EMAILAPI_METRICS_DIR", str(VAR_DIR / "metrics")))
# The per-account IMAP/SMTP log (an account's `logs: true`): lines kept per account in Redis,
# and seconds they are kept after the last one.
EMAILAPI_ACCOUNT_LOG_LINES = env_int("EMAILAPI_ACCOUNT_LOG_LINES", 10000, minimum=10)
EMAILAPI_ACCOUNT_LOG_TTL = env_int("EMAILAPI_ACCOUNT_LOG_TTL", 7 * 24 * 3600, minimum=60)
