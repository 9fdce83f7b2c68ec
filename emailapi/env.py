"""Reading configuration from environment variables, failing loudly on bad values.

Every setting of emailapi comes from the environment (README lists them with their defaults).
A typo such as ``DEBUG=ture`` or ``PORT=80a`` must stop the process at start-up with a message
naming the variable, not be silently read as a default.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_networks(name: str, default: str = "") -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A comma-separated list of addresses and CIDR networks (``10.0.0.5,192.168.0.0/16``)."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses or networks (10.0.0.0/8), not {item!r}") from None
    return networks


def env_addresses(name: str, default: str = "") -> list[str]:
    """A comma-separated list of IP addresses (``192.0.2.10,2001:db8::25``), each written the
    one way ``ipaddress`` writes it, so that comparing two is comparing strings."""
    addresses = []
    for item in env_list(name, default):
        try:
            addresses.append(str(ipaddress.ip_address(item)))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses (192.0.2.10), not {item!r}") from None
    return list(dict.fromkeys(addresses))


def env_seconds_list(name: str, default: str) -> list[int]:
    """A non-empty comma-separated list of seconds (retry schedules), e.g. ``10,30,120``."""
    try:
        values = [int(item) for item in env_list(name, default)]
        if values and min(values) >= 0:
            return values
    except ValueError:
        pass
    raise ImproperlyConfigured(f"{name} must be comma-separated seconds, e.g. 10,30,120")


def parse_database_url(url: str, sqlite_default: Path, pool_size: int = 10,
                       pool_wait: float = 20) -> dict:
    """Turn ``DATABASE_URL`` into a Django ``DATABASES['default']`` entry.

    Supported: ``postgres://user:pass@host:port/name?sslmode=...`` (also ``postgresql://``)
    and ``sqlite:///relative/or/absolute/path.sqlite3``. Empty means the embedded SQLite file,
    tuned for several processes (web, workers) sharing it: WAL journal and a busy timeout.

    PostgreSQL connections come from a pool of at most ``pool_size`` per process; a caller
    waits up to ``pool_wait`` seconds for a free one (``PoolTimeout`` after that).
    """
    if not url:
        return sqlite_config(sqlite_default)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("postgres", "postgresql", "pgsql"):
        options = dict(parse_qsl(parts.query))
        test_name = options.pop("test_name", None)  # our own knob, not a libpq option
        # libpq's own default is to wait without end (psycopg's, 130 s) for a server that
        # accepts the connection and then says nothing; a pool thread waiting that long
        # opens no connection meanwhile.
        options.setdefault("connect_timeout", "10")
        config = {
            # Django's backend with a cheaper check of pooled connections (below).
            "ENGINE": "emailapi.lib.postgres",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            # Under ASGI each request may run on a different thread, so per-thread persistent
            # connections (CONN_MAX_AGE) would mean a new connection per request; a shared
            # psycopg pool hands a warm connection to whichever thread asks.
            "CONN_MAX_AGE": 0,
            # The pool checks a connection before handing it out (``emailapi.lib.pgcheck``:
            # its socket, and an empty query when in doubt): a connection the server ended
            # while it sat idle (restart, pg_terminate_backend, a proxy's timeout) is
            # replaced, not given to a request that would then fail with it. Not Django's
            # CONN_HEALTH_CHECKS: that is psycopg's check, a round trip every request.
            "CONN_HEALTH_CHECKS": False,
            "OPTIONS": {"pool": {"min_size": 1, "max_size": pool_size, "timeout": pool_wait},
                        **options},
        }
        if test_name:
            config["TEST"] = {"NAME": test_name}
        return config
    if scheme == "sqlite":
        # sqlite:///var/db.sqlite3 is relative, sqlite:////abs/path is absolute.
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return sqlite_config(Path(unquote(path)))
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {scheme!r} is not supported (use postgres:// or sqlite:///)"
    )


def sqlite_config(path: Path) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            # Web, IMAP workers and rq workers write concurrently: WAL lets readers run beside
            # one writer, IMMEDIATE takes the write lock up front so a transaction never fails
            # half-way with "database is locked", and the timeout waits instead of erroring.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }


def secret_from_env_or_file(name: str, path: Path) -> str:
    """Return ``$name``, or a secret kept in ``path``, generating it once if missing.

    Credentials are encrypted with a key derived from this secret, so losing it loses every
    stored password: the generated one is written with 0600 permissions and never rotated
    silently. A warning tells the operator to set it explicitly for production.
    """
    value = os.environ.get(name, "").strip()
    if value:
        if len(value) < 16:
            raise ImproperlyConfigured(f"{name} must be at least 16 characters long")
        return value
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    print(
        f"warning: {name} is not set; generated one and stored it in {path}. "
        f"Back it up: stored credentials cannot be decrypted without it.",
        file=sys.stderr,
    )
    return value
