"""Timestamps read from PostgreSQL are parsed by psycopg's C loader (``emailapi.lib.postgres``'s
``FastTzLoader``) and come back exactly as Django's own loader gives them: the same instant,
Django's ``tzinfo``, microseconds kept, out-of-range values refused the same way."""

from __future__ import annotations

import datetime

import psycopg
import pytest
from django.db import DataError, connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.adapt import Transformer
from psycopg.postgres import types

from emailapi.lib.postgres import base as postgres_base
from emailapi.lib.postgres.base import FastTzLoader
from webhooks.models import Event

pytestmark = pytest.mark.django_db

UTC = datetime.timezone.utc
TIMESTAMPTZ = types["timestamptz"].oid
WRITTEN = [
    "2026-12-07 04:01:02.123456+00",
    "2026-12-07 04:01:02+05:30",  # another offset: the session shows it in UTC
    "2024-02-29 23:59:59.999999-08",
    "1969-12-31 23:59:59.5+00",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "1900-06-15 12:00:00+01",
]


def djangos_loader() -> BaseTzLoader:
    """What Django would have registered for this connection."""
    loader = type("DjangoTzLoader", (BaseTzLoader,), {"timezone": connection.timezone})
    return loader(TIMESTAMPTZ, Transformer(connection.connection))


def test_connections_read_timestamps_with_the_c_loader():
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ, psycopg.pq.Format.TEXT)
    assert issubclass(loader, FastTzLoader)
    assert psycopg.pq.__impl__ in ("binary", "c")  # what make installs: psycopg[binary]
    assert postgres_base._ParseTimestamptz.__module__.startswith(("psycopg_binary", "psycopg_c"))
    assert loader.timezone == connection.timezone  # else Django's cursors replace it
    with connection.cursor() as cursor:
        assert cursor.cursor.adapters.get_loader(TIMESTAMPTZ, psycopg.pq.Format.TEXT) is loader


def test_values_are_those_of_djangos_loader():
    with connection.cursor() as cursor:
        cursor.execute("SELECT x::timestamptz::text FROM unnest(%s::text[]) AS x", [WRITTEN])
        shown = [row[0].encode() for row in cursor.fetchall()]  # as the session sends them
        cursor.execute("SELECT x::timestamptz FROM unnest(%s::text[]) AS x", [WRITTEN])
        ours = [row[0] for row in cursor.fetchall()]
    djangos = djangos_loader()
    assert ours == [djangos.load(value) for value in shown]
    assert [value.tzinfo for value in ours] == [connection.timezone] * len(WRITTEN)
    assert ours[0] == datetime.datetime(2026, 12, 7, 4, 1, 2, 123456, tzinfo=UTC)
    assert ours[1] == datetime.datetime(2026, 12, 6, 22, 31, 2, tzinfo=UTC)
    assert ours[3].microsecond == 500000


def test_the_orm_reads_them_too(alice):
    event = Event.objects.create(tenant=alice.tenant, event="messageNew", account_id="a")
    stored = Event.objects.values_list("created_at", flat=True).get(pk=event.pk)
    assert stored == event.created_at
    assert stored.tzinfo is connection.timezone


@pytest.mark.parametrize("value", ["infinity", "-infinity"])
def test_out_of_range_values_are_refused_as_before(value):
    djangos = djangos_loader()
    with pytest.raises(psycopg.DataError) as theirs:
        djangos.load(value.encode())
    with pytest.raises(DataError) as ours, connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [value])
        cursor.fetchall()
    assert str(ours.value) == str(theirs.value)
