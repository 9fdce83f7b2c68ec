"""Outbound connections made on a tenant's behalf: which addresses we connect to
(``addresses``), and HTTP requests pinned to a checked address (``http``).

Webhook receivers, OAuth2 token endpoints and IMAP/SMTP servers are all chosen by tenants;
they share one address classifier and one rule: resolve, check, connect to what was checked.
No Django here: callers pass their policy in.
"""
