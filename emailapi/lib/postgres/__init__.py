"""Django's PostgreSQL backend, with the pooled connection check of ``emailapi.lib.pgcheck``
(``ENGINE = "emailapi.lib.postgres"``, set by ``emailapi.env``)."""
