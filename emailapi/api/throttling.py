"""A per-tenant request rate limit (fixed one-minute windows), counted by ``accounts.usage``.

The counts meet in Redis, so the limit holds across every web process (within what the other
processes served in the last fraction of a second: ``usage.FLUSH_SECONDS``). It is a fairness
guard, not a security boundary; while Redis is unreachable each process still holds the limit
on its own calls.
"""

from __future__ import annotations

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from accounts import plans, usage

WINDOW = usage.WINDOW


class TenantRateThrottle(BaseThrottle):
    # Whether a request counts in the tenant's API calls of the day (accounts.usage); the
    # dashboard's own live stream is limited like the API but is not the customer's use.
    api_call = True

    def allow_request(self, request, view) -> bool:
        tenant = getattr(request.user, "tenant", None)
        if tenant is None:
            return True
        # The tenant's plan (accounts.plans) sets its own rate; EMAILAPI_RATE_LIMIT otherwise.
        # Calls are counted either way (accounts.usage): the dashboard shows them.
        limit = plans.rate_limit(tenant) or settings.EMAILAPI_RATE_LIMIT
        count = usage.count_call(tenant.pk, api_call=self.api_call)
        self._wait = WINDOW - (time.time() % WINDOW)
        return not limit or count <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


class DashboardRateThrottle(TenantRateThrottle):
    """The dashboard's live stream: in the rate limit's window, not in the day's API calls."""

    api_call = False
