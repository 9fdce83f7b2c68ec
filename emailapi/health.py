"""``GET /health``: is this process able to reach its database and Redis?

Unauthenticated (load balancers call it) and cheap: one ``SELECT 1`` on a pooled connection
and one ``PING``, each with a short timeout. 200 when both answer, 503 otherwise, with the
failing part named. For the database it says which fault it is (``emailapi.lib.dbpool``):
``"pool exhausted"`` (this process holds every connection it may open while the database
accepts new ones: restarting this process helps) or ``"unreachable"`` (the database itself
does not answer: restarting does not). ``pool`` shows the process's pool as it was just
before the check: connections open (``size``, at most ``max``), ``idle``, ``busy`` with a
request, and requests ``waiting`` for one.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from emailapi.lib import dbpool
from emailapi.lib.redis import get_redis


def _database() -> dict:
    return dbpool.probe(wait=settings.DB_POOL_WAIT)


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
