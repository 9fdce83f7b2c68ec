"""The rq worker class ``manage.py serve`` runs: a job in progress is never cut short by a
second stop signal.

rq takes a second SIGINT/SIGTERM more than a second after the first as "cold shut down" and
raises out of the job in progress. Under ``serve`` that second signal is not a person asking
twice: a terminal's Ctrl-C reaches every process of the group, and the supervisor then sends
each child its SIGTERM, so a send cut in half hung on how fast the supervisor answered. A
stop here always lets the job finish; the supervisor kills a child still running after its
grace period (10 s), which bounds a job that hangs.

Its jobs' database statements are bounded as the other workers' are
(``EMAILAPI_DB_WORKER_QUERY_TIMEOUT``, ``emailapi.lib.pgdeadline``), for connections
it opens after it starts.
"""

from __future__ import annotations

from django.conf import settings
from rq.worker import SimpleWorker

from emailapi.lib import dbpool


class WarmStopWorker(SimpleWorker):
    """rq's ``SimpleWorker`` (each job in this process), whose stop is always warm."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        dbpool.bound_statements(settings.DB_WORKER_QUERY_TIMEOUT)

    def request_force_stop(self, signum, frame) -> None:
        self.log.info("Worker %s: already stopping after the job in progress", self.name)
