"""What rq says of a job the sweeps look after (a send, an export): PostgreSQL holds the work,
rq only carries "do N", so a sweep asks whether a job for N is still alive before it enqueues
another."""

from __future__ import annotations


def status(job_id: str, connection) -> str | None:
    """The job's rq status (``queued``, ``started``...), or None when rq has no such job."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        value = Job.fetch(job_id, connection=connection).get_status(refresh=False)
    except NoSuchJobError:
        return None
    return str(getattr(value, "value", value))


def delete_waiting(job_id: str, connection) -> None:
    """Delete the job if it has not started (queued, scheduled, deferred); one running, or
    none, is left as it is."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return
    if job.get_status(refresh=False) in ("queued", "scheduled", "deferred"):
        job.delete()
