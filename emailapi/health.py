"""``GET /health``: is this process able to reach its database and Redis?

Unauthenticated (load balancers call it) and cheap: one ``SELECT 1`` and one ``PING``, each with a
short timeout. 200 when both answer, 503 otherwise, with the failing part named.
"""

from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from emailapi.redis import get_redis


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001 - report, never raise
        return {"ok": False, "error": exc.__class__.__name__}


def _redis() -> dict:
    try:
        get_redis().ping()
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": exc.__class__.__name__}


@require_GET
def health(request):
    checks = {"database": _database(), "redis": _redis()}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", **checks},
                        status=200 if healthy else 503)
