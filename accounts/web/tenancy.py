"""Which tenant a dashboard request acts for, and what the user's role lets them do.

``tenant_view`` resolves the signed-in user's membership (the one chosen in the session, else
their first) and sets ``request.tenant`` and ``request.membership``. Views then look objects up
only inside ``request.tenant``, so another tenant's mailbox is a 404, exactly like a missing one.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts import plans
from accounts.models import Membership
from emailapi.lib.errors import NotFound

WRITE_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN)


def current_membership(request) -> Membership | None:
    memberships = Membership.objects.filter(user=request.user).select_related("tenant")
    chosen = request.session.get("tenant_id")
    membership = None
    if chosen:
        membership = memberships.filter(tenant_id=chosen).first()
    return membership or memberships.order_by("created_at", "id").first()


def tenant_view(write: bool = False):
    """Decorate a view that needs a tenant; ``write`` views also need the owner or admin role
    (and a tenant that is not stopped, except for the pages that show why)."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            membership = current_membership(request)
            if membership is None:
                raise Http404("No organization")
            request.membership = membership
            request.tenant = membership.tenant
            plans.effective_status(request.tenant)
            if write and request.method == "POST" and membership.role not in WRITE_ROLES:
                raise PermissionDenied("Your role can view but not change this")
            try:
                return view(request, *args, **kwargs)
            except NotFound as exc:  # a service found the thing gone (deleted meanwhile)
                raise Http404(exc.message) from None

        return wrapper

    return decorate


def can_write(request) -> bool:
    return getattr(request, "membership", None) is not None and \
        request.membership.role in WRITE_ROLES
