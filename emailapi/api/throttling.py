"""A per-tenant request rate limit kept in Redis (fixed one-minute windows).

Counting in Redis makes the limit hold across every web process. It is a fairness guard, not a
security boundary, so when Redis is unreachable requests are let through rather than refused.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from accounts import plans, usage

logger = logging.getLogger(__name__)
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
        try:
            count = usage.count_call(tenant.pk, api_call=self.api_call)
        except Exception as exc:  # noqa: BLE001 - any Redis failure: fail open
            logger.warning("rate limit skipped, Redis unavailable: %s", exc)
            return True
        self._wait = WINDOW - (time.time() % WINDOW)
        return not limit or count <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


class DashboardRateThrottle(TenantRateThrottle):
    """The dashboard's live stream: in the rate limit's window, not in the day's API calls."""

    api_call = False
