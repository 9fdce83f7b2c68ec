"""Which accounts some worker should hold: not paused, with IMAP settings, their tenant not
stopped (expired, suspended, a trial past its end).

Every worker asks this on every claim tick (``IMAP_CLAIM_INTERVAL``). What a worker at its
share needs is how many there are (its share) and which of its own accounts are no longer
eligible or have new settings; reading every eligible account into Python for that cost its
main thread about 13 ms of CPU at 20,000 accounts, and many times that in wall time while the
pool's threads held the interpreter (a survivor connecting a dead worker's accounts logged
slices of its tick of 250-470 ms). On PostgreSQL the comparison is made by the database
(``held_changes``); on SQLite (``make run``'s small installations) in Python.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from accounts import plans
from accounts.models import EmailAccount


def eligible() -> QuerySet:
    """Unordered: the model's default order had PostgreSQL sort all of them each time (102 ms
    against 58 at 20,000 accounts)."""
    return (EmailAccount.objects.filter(paused=False, imap__isnull=False)
            .exclude(plans.stopped_tenants_q()).order_by())


def all_eligible() -> list[int]:
    """Every eligible account: what a worker short of its share chooses from."""
    return list(eligible().values_list("pk", flat=True))


def of_stopped_tenants(pks: list[int]) -> set[int]:
    """Of ``pks`` (accounts no longer eligible), those of a stopped tenant: a worker records
    them ``paused`` as it lets them go (the others were deleted or paused already)."""
    if not pks:
        return set()
    return set(EmailAccount.objects.filter(pk__in=pks).filter(plans.stopped_tenants_q())
               .values_list("pk", flat=True))


def held_changes(held: dict[int, int]) -> tuple[int, dict[int, int | None]]:
    """How many accounts are eligible, and of ``held`` (account -> the settings version its
    session runs with; 0: not known yet, never a change) those no longer eligible (None) or
    eligible with another version (the version)."""
    if connection.vendor != "postgresql":
        return _compared_here(held)
    sql, params = eligible().values_list("pk", "config_version").query.sql_with_params()
    pks = "{" + ",".join(map(str, held)) + "}"
    versions = "{" + ",".join(map(str, held.values())) + "}"
    with connection.cursor() as cursor:
        # One row for the count (id NULL), then one per held account that changed.
        cursor.execute(
            f"WITH eligible (id, version) AS MATERIALIZED ({sql}), "
            "held (id, version) AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[])) "
            "SELECT NULL, count(*) FROM eligible "
            "UNION ALL "
            "SELECT held.id, eligible.version FROM held LEFT JOIN eligible USING (id) "
            "WHERE eligible.id IS NULL "
            "   OR (held.version <> 0 AND eligible.version <> held.version)",
            [*params, pks, versions])
        rows = cursor.fetchall()
    count = next(n for pk, n in rows if pk is None)
    return count, {pk: version for pk, version in rows if pk is not None}


def _compared_here(held: dict[int, int]) -> tuple[int, dict[int, int | None]]:
    wanted = dict(eligible().values_list("pk", "config_version"))
    changes: dict[int, int | None] = {}
    for pk, version in held.items():
        now = wanted.get(pk)
        if now is None or (version and now != version):
            changes[pk] = now
    return len(wanted), changes
