"""Template context for every dashboard page: the tenant's status banner and the user's role."""

from __future__ import annotations

from accounts import plans
from accounts.web.tenancy import can_write


def dashboard(request) -> dict:
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        return {}
    return {"tenant": tenant, "trial_days_left": plans.trial_days_left(tenant),
            "can_write": can_write(request), "membership": request.membership,
            "organizations": lambda: list(request.user.memberships.select_related("tenant")
                                          .order_by("tenant__name"))}
