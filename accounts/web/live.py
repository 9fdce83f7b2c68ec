"""The dashboard's live data: a small JSON document the pages refresh when the tenant's event
stream says something happened.

The pages listen to ``GET /v1/stream`` (Server-Sent Events) with a read-only API token that
this session holds (``stream_url``: one per user, made on the first page, revoked at sign-out
or replaced by the user's next session). Each event makes the page fetch ``live.json`` at
once; a slow poll of it backs the stream up (a state change that raises no event, a stream
that cannot connect). Mailbox states come from the account rows the workers write; the event
feed from the outbox (``webhooks.models.Event``).
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from accounts import services
from accounts.models import ApiToken, EmailAccount
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


LIVE_TOKEN_NAME = "Dashboard live updates"
_SESSION_KEY = "live_token"


def stream_url(request) -> str:
    """``/v1/stream`` with this session's read-only token (made once per session)."""
    saved = request.session.get(_SESSION_KEY) or {}
    if saved.get("tenant") != request.tenant.pk:
        for old in ApiToken.objects.filter(tenant=request.tenant, created_by=request.user,
                                           name=LIVE_TOKEN_NAME, revoked_at__isnull=True):
            services.revoke_token(old)
        token, raw = services.issue_token(request.tenant, LIVE_TOKEN_NAME, ["read"],
                                          created_by=request.user)
        saved = {"tenant": request.tenant.pk, "id": token.pk, "raw": raw}
        request.session[_SESSION_KEY] = saved
    return f"/v1/stream?access_token={saved['raw']}"


def forget_stream_token(request) -> None:
    """At sign-out: the session's token stops working with the session."""
    saved = request.session.pop(_SESSION_KEY, None)
    if saved:
        token = ApiToken.objects.filter(pk=saved.get("id")).first()
        if token is not None:
            services.revoke_token(token)
