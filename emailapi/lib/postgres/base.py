"""Django's PostgreSQL ``DatabaseWrapper`` whose psycopg pool checks a connection it hands out
with ``emailapi.lib.pgcheck.check`` (its socket; a round trip only when in doubt) instead of
psycopg's ``check_connection`` (a round trip every time), which is all Django's own
``CONN_HEALTH_CHECKS`` can choose, and whose connections wait for the server's answers only
as long as ``emailapi.lib.pgdeadline`` allows. Everything else is Django's backend."""

from __future__ import annotations

from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base

from emailapi.lib import pgcheck, pgdeadline


class DatabaseWrapper(base.DatabaseWrapper):
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
