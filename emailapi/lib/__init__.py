"""Shared technical pieces that know nothing of the domain: no app (accounts, mailboxes,
webhooks), no ``rest_framework``, no channels is imported here.

* ``netguard``: which hosts, addresses and URLs we connect to for a tenant (SSRF guard), and
  connecting only to a checked address; ``http``: requests pinned to such an address
  (webhooks and the OAuth2 back channel).
* ``backoff``: the one retry ``Schedule`` (IMAP reconnects, outbox sends, webhook
  deliveries, ``serve``'s children).
* ``redis`` (the shared client), ``dbpool`` (database pool faults), ``wording`` (errors in our
  words), ``logsafe`` (log lines without secrets or control characters).
* ``process_exit``: a process ends without the interpreter's final garbage collection.
"""
