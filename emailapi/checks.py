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
