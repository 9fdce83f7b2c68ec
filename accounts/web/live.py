"""The dashboard's live data: a small JSON document the pages poll every 2 seconds.

Polling, not the tenant's SSE stream: the stream is token-authenticated and a browser session
has no token, and one indexed query per poll is cheap. Mailbox states come from the account
rows the workers write; the event feed from the outbox (``webhooks.models.Event``).
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from accounts.models import EmailAccount
from accounts.web import views
from accounts.web.tenancy import tenant_view
from webhooks.models import Event


@never_cache
@tenant_view()
def live(request):
    accounts = EmailAccount.objects.filter(tenant=request.tenant).values(
        "account", "state", "last_error")
    events = Event.objects.filter(tenant=request.tenant).order_by("-created_at")[:15]
    return JsonResponse({
        "mailboxes": {row["account"]: {"state": row["state"],
                                       "lastError": _error_text(row["last_error"])}
                      for row in accounts},
        "eventsToday": views._events_today(request.tenant),
        "events": [{"event": e.event, "account": e.account, "path": e.path,
                    "createdAt": e.created_at.isoformat()} for e in events],
    })


def _error_text(error) -> str:
    if not error:
        return ""
    if isinstance(error, dict):
        return str(error.get("response") or error.get("error") or error.get("message") or error)
    return str(error)
