"""Django's PostgreSQL ``DatabaseWrapper`` whose psycopg pool checks a connection it hands out
with ``emailapi.lib.pgcheck.check`` (its socket; a round trip only when in doubt) instead of
psycopg's ``check_connection`` (a round trip every time), which is all Django's own
``CONN_HEALTH_CHECKS`` can choose, and whose connections wait for the server's answers only
as long as ``emailapi.lib.pgdeadline`` allows, and which reads ``timestamptz`` values with
psycopg's C parser (``FastTzLoader``). Everything else is Django's backend."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import get_adapters_template
from psycopg import _cmodule, adapt
from psycopg.postgres import types
from psycopg.types.datetime import TimestamptzLoader

from emailapi.lib import pgcheck, pgdeadline

# The C loader of the implementation psycopg runs on (psycopg[binary] or psycopg[c]); its
# Python one where it runs without (PSYCOPG_IMPL=python).
_ParseTimestamptz = _cmodule._psycopg.TimestamptzLoader if _cmodule._psycopg else TimestamptzLoader


class FastTzLoader(adapt.Loader):
    """A ``timestamptz`` as Django's loader returns it (the session's time, which Django sets
    to its own, with Django's ``tzinfo``) but parsed by psycopg's C loader.

    Django registers a subclass of psycopg's *Python* loader to put its own ``tzinfo`` on
    each value, so every timestamp read through the ORM or a raw cursor was parsed in Python:
    6.2 against 1.8 us a value on this machine, and a listing or a webhook run reads
    thousands. The C class cannot be subclassed, so it is held and called. ``timezone`` is
    what Django's ``create_cursor`` compares to decide whether to register its own loader on
    a cursor (only when the connection's time zone differs)."""

    timezone = None

    def __init__(self, oid, context=None):
        super().__init__(oid, context)
        self._parse = _ParseTimestamptz(oid, context).load

    def load(self, data):
        return self._parse(data).replace(tzinfo=self.timezone)


@lru_cache
def adapters_template(use_tz, timezone):
    """Django's adapters for new connections, with ``FastTzLoader`` for ``timestamptz``."""
    template = adapt.AdaptersMap(get_adapters_template(use_tz, timezone))
    loader = type("SpecificFastTzLoader", (FastTzLoader,), {"timezone": timezone})
    template.register_loader(types["timestamptz"].oid, loader)
    return template


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        params["context"] = adapters_template(settings.USE_TZ, self.timezone)
        return params

    @property
    def pool(self):
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options:
            return None
        if self.alias not in self._connection_pools:
            from psycopg_pool import ConnectionPool

            kwargs = self.get_connection_params()
            kwargs["autocommit"] = True  # as Django's: it sets autocommit itself later
            pool = ConnectionPool(kwargs=kwargs, open=False,
                                  connection_class=pgdeadline.DeadlineConnection,
                                  configure=self._configure_connection, check=pgcheck.check,
                                  **({} if options is True else options))
            # setdefault: threads racing at start-up each built one; the first one wins.
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]
