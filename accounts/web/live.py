"""The dashboard's live data: a small JSON document the pages refresh when the tenant's event
stream says something happened.

The pages listen to ``GET /dashboard/stream``: the tenant's ``/v1/stream`` (Server-Sent Events,
same parameters, same resume by ``Last-Event-ID``) with the signed-in session as the credential.
A browser sends the session cookie with an EventSource by itself, so no token is ever made for
the pages or put in a URL (where access logs, proxies and browser history would keep it), the
stream ends with the session at the next reconnect, and the browser's own reconnects work
(a short-lived single-use ticket in the URL would break them). Each event makes the page fetch
``live.json`` at once; a slow poll of it backs the stream up (a state change that raises no
event, a stream that cannot connect). Mailbox states come from the account rows the workers
write; the event feed from the outbox (``webhooks.models.Event``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib import auth
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import authentication

from accounts import plans
from accounts.models import EmailAccount, Tenant, User
from accounts.web import views
from accounts.web.tenancy import current_membership, tenant_view
from emailapi.api.errors import ApiError
from webhooks.api.stream_views import StreamView
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


@dataclass
class DashboardCaller:
    """``request.user`` of the dashboard's stream: a signed-in user reading for the tenant the
    session acts for (the ``ApiCaller`` of a session: the stream's views need ``tenant`` and
    ``scopes``)."""

    tenant: Tenant
    user: User
    scopes: list[str] = field(default_factory=lambda: ["read"])
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def pk(self):
        return self.user.pk


class SessionCookieAuthentication(authentication.BaseAuthentication):
    """The dashboard session from its cookie. The stream is served by the API's short
    middleware chain (``webhooks.stream.handler``: no thread per open stream), which has no
    session or auth middleware, so the session is read here, the way those middlewares would
    read it (``auth.get_user`` checks the password hash it was signed in with). A GET that
    changes nothing needs no CSRF check; the cookie is SameSite=Lax, so other sites' pages
    cannot open the stream with it, and could not read it without CORS anyway."""

    def authenticate(self, request):
        key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if not key:
            return None
        session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
        signed_in = SimpleNamespace(session=session)
        user = auth.get_user(signed_in)
        if not user.is_authenticated:
            return None
        signed_in.user = user
        membership = current_membership(signed_in)
        if membership is None:
            return None
        plans.check_api_access(membership.tenant)  # a stopped tenant: 402 / 403, like /v1
        return DashboardCaller(tenant=membership.tenant, user=user), None


@extend_schema_view(get=extend_schema(exclude=True))  # a dashboard route, not the API's
class LiveStreamView(StreamView):
    """``GET /dashboard/stream``: ``/v1/stream`` for the signed-in session."""

    authentication_classes = [SessionCookieAuthentication]

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            raise ApiError("Sign in to the dashboard to follow its live updates",
                           "Forbidden", 403)
        super().permission_denied(request, message=message, code=code)
