"""``GET /v1/stats``: EmailEngine's server statistics, for the caller's tenant.

EmailEngine counts the whole server; here a tenant sees its own: its mailboxes, how many are in
each connection state (as listings show them: one no live worker holds is ``disconnected``),
and the events recorded for them in the last ``seconds``.

EmailEngine's two extra counters mean here what they mean there: ``unassigned``, mailboxes a
worker should hold (``mailboxes.worker.eligible``: not paused, with IMAP settings) that no live
worker holds (waiting for their first claim, or for a worker to take them over); ``unset``,
mailboxes without IMAP settings. EmailEngine counts these under no state; here they keep their
shown state too (``init``, ``disconnected``, an error), so the state counts still add up to
``accounts``.
"""

from __future__ import annotations

import platform
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.models import EmailAccount
from emailapi.api.serializers import QuerySerializer
from emailapi.api.views import TenantScopedAPIView
from mailboxes.worker import eligible, holders
from webhooks.models import Event

MAX_SECONDS = 90 * 24 * 3600


class StatsQuerySerializer(QuerySerializer):
    seconds = serializers.IntegerField(min_value=0, max_value=MAX_SECONDS, default=3600,
                                       help_text="The period the event counters cover")


class StatsCountersSerializer(serializers.Serializer):
    events = serializers.DictField(child=serializers.IntegerField(),
                                   help_text="Events recorded in the period, by name")


class StatsSerializer(serializers.Serializer):
    version = serializers.CharField(help_text="emailapi's API version")
    python = serializers.CharField(help_text="Python's version (EmailEngine says node)")
    accounts = serializers.IntegerField(help_text="Your registered mailboxes")
    connections = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Your mailboxes by connection state (these add up to `accounts`), and "
                  "EmailEngine's `unassigned` (not paused, with IMAP settings, held by no live "
                  "worker) and `unset` (without IMAP settings), also counted under their state")
    counters = StatsCountersSerializer()


class StatsView(TenantScopedAPIView):
    """``GET /v1/stats``."""

    @extend_schema(operation_id="getStats", tags=["Stats"], parameters=[StatsQuerySerializer],
                   responses={200: StatsSerializer}, summary="Statistics (EmailEngine's shape)",
                   description="Your mailboxes, how many are in each connection state, and "
                               "the events recorded for them in the last `seconds` (default "
                               "3600), under EmailEngine's names. `connections.unassigned` "
                               "counts the mailboxes waiting for a worker.")
    def get(self, request):
        query = self.validated(StatsQuerySerializer, request.query_params)
        mailboxes = EmailAccount.objects.filter(tenant=self.tenant)
        connections = {state: mailboxes.filter(holders.state_filter(state)).count()
                       for state in EmailAccount.State.values}
        connections["unassigned"] = eligible.eligible().filter(tenant=self.tenant) \
            .exclude(holders.held()).count()
        connections["unset"] = mailboxes.filter(imap__isnull=True).count()
        since = timezone.now() - timedelta(seconds=query["seconds"])
        events = dict(Event.objects.filter(tenant=self.tenant, created_at__gte=since)
                      .values_list("event").annotate(n=Count("id")).order_by())
        return Response({
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
            "python": platform.python_version(),
            "accounts": mailboxes.count(),
            "connections": connections,
            "counters": {"events": events},
        })
