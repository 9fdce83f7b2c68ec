"""``GET``/``PUT /v1/settings/queue/{queue}``: EmailEngine's queue counters for the caller's
tenant, from our tables (``webhooks.queues``). Pausing a queue is not supported: ``PUT`` with
``paused: true`` is 501; ``paused: false`` (resume) answers at once, nothing being paused."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from emailapi.api.serializers import StrictSerializer
from emailapi.api.views import TenantScopedAPIView
from webhooks import queues

TAGS = ["Settings"]

QUEUE_PARAM = OpenApiParameter(
    "queue", str, OpenApiParameter.PATH, enum=list(queues.QUEUES),
    description="`notify` (webhook deliveries), `submit` (the outbox) or `documents` "
                "(EmailEngine's Document Store: none here, always empty)")


class QueueJobsSerializer(serializers.Serializer):
    active = serializers.IntegerField(help_text="Being delivered or sent now")
    delayed = serializers.IntegerField(help_text="Due later (a retry's backoff, a future sendAt)")
    paused = serializers.IntegerField(help_text="Always 0: queues are never paused here")
    waiting = serializers.IntegerField(help_text="Due now, waiting for a dispatcher or sender")


class QueueSerializer(serializers.Serializer):
    queue = serializers.ChoiceField(choices=queues.QUEUES)
    jobs = QueueJobsSerializer()
    paused = serializers.BooleanField(help_text="Always false")


class QueuePauseSerializer(StrictSerializer):
    paused = serializers.BooleanField(required=False,
                                      help_text="Only false (resume) is accepted; true is 501")


class QueuePausedSerializer(serializers.Serializer):
    queue = serializers.ChoiceField(choices=queues.QUEUES)
    paused = serializers.BooleanField()


class QueueView(TenantScopedAPIView):
    """``/v1/settings/queue/{queue}``."""

    @extend_schema(operation_id="getQueue", tags=TAGS, parameters=[QUEUE_PARAM],
                   responses={200: QueueSerializer}, summary="Queue counters",
                   description="Your unfinished webhook deliveries (`notify`) or outbox entries "
                               "(`submit`): `active` (in progress), `delayed` (due later), "
                               "`waiting` (due now), `paused` (always 0). An unknown queue is "
                               "400 `UnknownQueue`.")
    def get(self, request, queue: str):
        jobs = queues.counts(self.tenant, queue)
        return Response({"queue": queue, "jobs": jobs, "paused": False})

    @extend_schema(operation_id="setQueue", tags=TAGS, parameters=[QUEUE_PARAM],
                   request=QueuePauseSerializer, responses={200: QueuePausedSerializer},
                   summary="Pause or resume a queue (resume only)",
                   description="Queues cannot be paused here: `paused: true` is 501 "
                               "`NotImplemented` (pause a webhook or an account instead); "
                               "`paused: false`, or nothing, answers `{queue, paused: false}`.")
    def put(self, request, queue: str):
        queues.check_queue(queue)
        data = self.validated(QueuePauseSerializer, request.data)
        if data.get("paused"):
            raise queues.PauseUnsupported()
        return Response({"queue": queue, "paused": False})
