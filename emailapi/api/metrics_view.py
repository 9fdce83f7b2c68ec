"""``GET /metrics``: Prometheus text format (``prometheus_client``), for Prometheus.

Who may scrape:

- an operator, with ``Authorization: Bearer <EMAILAPI_METRICS_TOKEN>``: every series of every
  process (``emailapi.lib.metrics.scrape_registry``) and the whole deployment's accounts and
  outbox by state;
- a tenant, with an API token whose scopes allow metrics routes (``metrics``, ``read`` or
  ``api``; an account token is 403): its own accounts and outbox by state, and the series
  labelled with its tenant (its webhook subscriptions). Process-wide series (API requests,
  IMAP workers, the database pool) describe every tenant's traffic together, so they are the
  operator's only.

No credential is 401, a bad one 401, a token whose scope does not allow it 403: the API's JSON
error shape, like every ``/v1`` route.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from rest_framework import authentication, permissions
from rest_framework.views import APIView

from accounts.api.authentication import BearerTokenAuthentication
from accounts.api.permissions import HasTokenScope
from accounts.models import EmailAccount
from emailapi.lib import metrics
from mailboxes.models import OutboxEntry
from mailboxes.worker import holders


class Operator:
    """``request.user`` of a scrape with ``EMAILAPI_METRICS_TOKEN``: sees everything."""

    is_authenticated = True
    is_anonymous = False
    tenant = None
    scopes = ["metrics"]
    pk = None


class ScrapeTokenAuthentication(authentication.BaseAuthentication):
    """The operators' scrape token; anything else goes on to the API token check."""

    def authenticate(self, request):
        expected = settings.EMAILAPI_METRICS_TOKEN
        if not expected:
            return None
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode("utf-8", "surrogatepass"), expected.encode()):
            return None
        return Operator(), None

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="metrics"'


class MayScrape(permissions.BasePermission):
    message = "This token's scopes do not allow reading metrics"
    code = "insufficient_scope"

    def has_permission(self, request, view) -> bool:
        if isinstance(request.user, Operator):
            return True
        return HasTokenScope().has_permission(request, view)


class MetricsView(APIView):
    """``GET /metrics``."""

    authentication_classes = [ScrapeTokenAuthentication, BearerTokenAuthentication]
    permission_classes = [MayScrape]
    throttle_classes: list = []
    metrics_route = True
    schema = None  # not part of the /v1 OpenAPI document

    def get(self, request):
        tenant = getattr(request.user, "tenant", None)
        source = metrics.scrape_registry()
        if tenant is None:
            metrics.observe_db_pool()
            body = generate_latest(source)
        else:
            body = generate_latest(_TenantSeries(source, str(tenant.pk)))
        body += generate_latest(_DatabaseCounts(tenant))
        return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


class _TenantSeries:
    """The series of ``source`` labelled ``tenant=<tenant>``, nothing else."""

    def __init__(self, source, tenant: str):
        self.source, self.tenant = source, tenant

    def collect(self):
        for family in self.source.collect():
            samples = [s for s in family.samples if s.labels.get("tenant") == self.tenant]
            if samples:
                kept = Metric(family.name, family.documentation, family.type, family.unit)
                kept.samples = samples
                yield kept


class _DatabaseCounts:
    """Accounts and outbox entries by state, counted now (all tenants', or one tenant's)."""

    def __init__(self, tenant):
        self.tenant = tenant

    def collect(self):
        accounts = EmailAccount.objects.all()
        outbox = OutboxEntry.objects.all()
        if self.tenant is not None:
            accounts = accounts.filter(tenant=self.tenant)
            outbox = outbox.filter(tenant=self.tenant)
        by_state = GaugeMetricFamily(
            "emailapi_accounts", "Registered accounts by connection state (as the API shows it)",
            labels=["state"])
        for state in EmailAccount.State.values:
            by_state.add_metric([state], accounts.filter(holders.state_filter(state)).count())
        yield by_state
        entries = GaugeMetricFamily(
            "emailapi_outbox_entries",
            "Outbox entries by state: queued and sending are the depth, sent and failed the "
            "results still kept", labels=["state"])
        counts = dict(outbox.values_list("state").annotate(n=Count("id")).order_by())
        for state in OutboxEntry.State.values:
            entries.add_metric([state], counts.get(state, 0))
        yield entries
