"""The dashboard's live data: a small JSON document the pages refresh when the tenant's event
stream says something happened.

The pages listen to ``GET /dashboard/stream``: the tenant's ``/v1/stream`` (Server-Sent Events,
same parameters, same resume by ``Last-Event-ID``) with the signed-in session as the credential.
A browser sends the session cookie with an EventSource by itself, so no token is ever made for
the pages or put in a URL (where access logs, proxies and browser history would keep it), an
open stream ends within a minute of its session (sign-out, membership removed, tenant
stopped), and the browser's own reconnects work (a short-lived single-use ticket in the URL
would break them). Each event makes the page fetch
``live.json`` at once; a slow poll of it backs the stream up (a state change that raises no
event, a stream that cannot connect). Mailbox states come from the account rows the workers
write; the event feed from the outbox (``webhooks.models.Event``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import wraps
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib import auth
from django.http import Http404, JsonResponse
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import authentication

from accounts import plans
from accounts import state as account_state
from accounts.models import EmailAccount, Membership, Tenant, User
from accounts.web import views
from accounts.web.tenancy import current_membership, tenant_view
from emailapi.api.errors import ApiError, json_error_response
from emailapi.api.throttling import DashboardRateThrottle
from webhooks.api.stream import StreamView
from webhooks.models import Event
from webhooks.stream import sse
from webhooks.stream.validity import Validity, while_valid


def _json_refusals(view):
    """``tenant_view`` for a document the pages' script fetches: a refusal is the API's JSON
    error (401 signed out, 404 no organization), not a redirect to the sign-in page or an
    HTML error page the script cannot read."""
    inner = tenant_view()(view)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return json_error_response("Sign in to the dashboard to see its live data",
                                       "Unauthorized", 401)
        try:
            return inner(request, *args, **kwargs)
        except Http404 as exc:
            return json_error_response(str(exc) or "Not found", "NotFound", 404)

    return wrapper


@never_cache
@_json_refusals
def live(request):
    accounts = EmailAccount.objects.filter(tenant=request.tenant).values(
        "account_id", "state", "last_error")
    events = Event.objects.filter(tenant=request.tenant).order_by("-created_at")[:15]
    return JsonResponse({
        "mailboxes": {row["account_id"]: _mailbox(row) for row in accounts},
        "eventsToday": views._events_today(request.tenant),
        "events": [{"event": e.event, "account": e.account_id, "path": e.path,
                    "createdAt": e.created_at.isoformat()} for e in events],
    })


def _mailbox(row: dict) -> dict:
    """A mailbox's state and its error as the pages show it (``account_state.shown_error``:
    nothing once it works again), times in ISO 8601 for app.js to write like the server."""
    shown = account_state.shown_error(row["state"], row["last_error"])

    def iso(value):
        return value.isoformat() if value else None

    return {"state": row["state"], "lastError": shown["error"] if shown else "",
            "lastErrorAt": iso(shown["time"]) if shown else None,
            "nextRetry": iso(shown["nextRetry"]) if shown else None}


@dataclass
class DashboardCaller:
    """``request.user`` of the dashboard's stream: a signed-in user reading for the tenant the
    session acts for (the ``ApiCaller`` of a session: the stream's views need ``tenant`` and
    ``scopes``)."""

    tenant: Tenant
    user: User
    session_key: str
    scopes: list[str] = field(default_factory=lambda: ["read"])
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def pk(self):
        return self.user.pk


def _signed_in(session_key: str) -> tuple[User, Membership] | None:
    """Who the session signs in and the membership it acts for, as the dashboard's pages
    would decide (``auth.get_user`` also checks the password the session was signed in
    with); None for no such session, user or membership."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)
    signed_in = SimpleNamespace(session=session)
    user = auth.get_user(signed_in)
    if not user.is_authenticated:
        return None
    signed_in.user = user
    membership = current_membership(signed_in)
    return None if membership is None else (user, membership)


def still_signed_in(caller: DashboardCaller) -> bool:
    """Whether the session that opened a stream still signs the same user in, for the same
    tenant, and that tenant is not stopped."""
    found = _signed_in(caller.session_key)
    if found is None:
        return False
    user, membership = found
    return (user.pk == caller.user.pk and membership.tenant_id == caller.tenant.pk
            and plans.effective_status(membership.tenant) not in plans.STOPPED)


class SessionCookieAuthentication(authentication.BaseAuthentication):
    """The dashboard session from its cookie. The stream is served by the API's short
    middleware chain (``webhooks.api.stream_asgi``: no thread per open stream), which has no
    session or auth middleware, so the session is read here, the way those middlewares would
    read it (``auth.get_user`` checks the password hash it was signed in with). A GET that
    changes nothing needs no CSRF check; the cookie is SameSite=Lax, so other sites' pages
    cannot open the stream with it, and could not read it without CORS anyway."""

    def authenticate(self, request):
        key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        found = _signed_in(key) if key else None
        if found is None:
            return None
        user, membership = found
        plans.check_api_access(membership.tenant)  # a stopped tenant: 402 / 403, like /v1
        return DashboardCaller(tenant=membership.tenant, user=user, session_key=key), None


@extend_schema_view(get=extend_schema(exclude=True))  # a dashboard route, not the API's
class LiveStreamView(StreamView):
    """``GET /dashboard/stream``: ``/v1/stream`` for the signed-in session."""

    authentication_classes = [SessionCookieAuthentication]
    throttle_classes = [DashboardRateThrottle]  # not counted as the customer's API calls

    def live_body(self, stream, backlog):
        every = SESSION_CHECKS_PER_KEEPALIVE * settings.STREAM_KEEPALIVE
        return _while_signed_in(sse.live_body(stream, backlog), self.request.user, every)

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            raise ApiError("Sign in to the dashboard to follow its live updates",
                           "Forbidden", 403)
        super().permission_denied(request, message=message, code=code)


# The session behind an open stream is looked at again every 4 keep-alive periods (a minute by
# default), so signing out, losing the membership or a stopped tenant ends the stream within
# about that long; the browser reconnects and is refused.
SESSION_CHECKS_PER_KEEPALIVE = 4


def _while_signed_in(body, caller: DashboardCaller, every: float):
    """Pass ``body`` on while ``caller``'s session still holds (``webhooks.stream.validity``)."""
    return while_valid(body, Validity(lambda: still_signed_in(caller), every))
