"""Model instances from one fixed SQL text, prepared once per pooled connection.

The ORM builds and compiles a query each time it runs: about 0.5 ms of Python for an account
by tenant and id, over 1 ms for a message with its folder, three to four times what the
database spends answering them. The API's hottest single-row lookups are fixed statements,
so they are written once (``ModelColumns``), prepared by PostgreSQL once per connection
(``prepared_rows``: planning is a good part of the database's share), and their rows become
model instances the way the ORM's own do (``Model.from_db`` after each field's converters:
JSON text is parsed, SQLite's dates and booleans read, exactly as a queryset would).
``prepared_rows`` and ``bound_cursor`` are how any fixed statement runs this way (the
listing's page, the webhook dispatcher's lane heads and outcomes).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from functools import lru_cache

from django.db import connection, models


def prepared_rows(sql: str, params) -> list[tuple]:
    """The rows of ``sql`` (``%s`` placeholders and a list, or ``%(name)s`` and a dict). On
    PostgreSQL a server-side prepared statement of the connection, with the parameters sent
    apart from it (``bound_cursor``): Django binds them into the text, so each value would
    otherwise be a new statement to plan. Logged where Django logs queries
    (``connection.queries``: debug, tests), as its own cursor would; database errors arrive
    as Django's."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    started = time.monotonic()
    with bound_cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        rows = cursor.fetchall()
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {params!r}", "time": f"{time.monotonic() - started:.3f}"})
    return rows


def locking(sql: str) -> str:
    """``sql`` (a SELECT) locking the rows it reads until the transaction ends, where the
    database has row locks (``select_for_update`` does nothing on SQLite either)."""
    return f"{sql} FOR UPDATE" if connection.features.has_select_for_update else sql


@contextmanager
def bound_cursor():
    """A psycopg cursor on this thread's PostgreSQL connection that sends parameters apart
    from the statement (Django quotes them into its text in Python); psycopg errors still
    come out as Django's."""
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


class ModelColumns:
    """A model's concrete columns under a table alias: ``select`` lists them for a hand-written
    query, ``instance`` turns that slice of a row into the model instance a queryset gives."""

    def __init__(self, model: type[models.Model], alias: str, leave_out: tuple[str, ...] = ()):
        """``leave_out``: fields not read; the instances have them deferred, as ``defer()``
        leaves them (Django reads one if it is asked for)."""
        self.model = model
        self.fields = [field for field in model._meta.concrete_fields
                       if field.name not in leave_out and field.attname not in leave_out]
        self.names = [field.attname for field in self.fields]
        quote = connection.ops.quote_name
        self.select = ", ".join(f"{alias}.{quote(field.column)}" for field in self.fields)
        self.alias = alias

    def __len__(self) -> int:
        return len(self.fields)

    def instance(self, values) -> models.Model:
        """The instance of these columns' ``values`` (in ``select``'s order)."""
        converted = [value if value is None or not converters else _convert(value, converters)
                     for value, converters in zip(values, _converters(self), strict=True)]
        return self.model.from_db(connection.alias, self.names, converted)


def _convert(value, converters):
    for convert, expression in converters:
        value = convert(value, expression, connection)
    return value


@lru_cache(maxsize=64)
def _converters_of(columns: ModelColumns, vendor: str) -> tuple:
    """Each column's converters (backend's, then the field's), as the ORM's compiler applies
    them; the same for every connection of a vendor (they read settings, not the connection)."""
    out = []
    for field in columns.fields:
        col = field.get_col(columns.alias)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        out.append(tuple((convert, col) for convert in found))
    return tuple(out)


def _converters(columns: ModelColumns) -> tuple:
    return _converters_of(columns, connection.vendor)
