"""System checks that catch deployment mistakes before the first request."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_redis_url(app_configs, **kwargs):
    scheme = urlsplit(settings.REDIS_URL).scheme
    if scheme not in ("redis", "rediss", "unix"):
        return [Error(f"REDIS_URL must be redis://, rediss:// or unix://, not {scheme!r}",
                      id="emailapi.E001")]
    return []


@register(deploy=True)
def check_database(app_configs, **kwargs):
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return [Warning("Running on embedded SQLite; set DATABASE_URL=postgres://... for "
                        "production and for more than one machine.", id="emailapi.W001")]
    return []


@register()
def check_https_behind_trusted_proxy(app_configs, **kwargs):
    """EMAILAPI_HTTPS means TLS ends at a proxy; its X-Forwarded-Proto is believed only from
    EMAILAPI_TRUSTED_PROXIES, so without any every request looks like plain http (links the
    API builds say http://, and the dashboard's forms fail their CSRF origin check)."""
    if settings.SESSION_COOKIE_SECURE and not settings.EMAILAPI_TRUSTED_PROXIES:
        return [Warning("EMAILAPI_HTTPS is set but EMAILAPI_TRUSTED_PROXIES is empty: the "
                        "proxy's X-Forwarded-Proto is not believed, so requests look like http. "
                        "List the proxy's address in EMAILAPI_TRUSTED_PROXIES.",
                        id="emailapi.W002")]
    return []
