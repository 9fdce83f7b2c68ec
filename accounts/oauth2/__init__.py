"""OAuth2 mailboxes: provider presets, the authorization-code flow with PKCE, signed connect
links, token refresh, and IMAP/SMTP settings discovery.

Why not social-auth-app-django's backends: they read the client id and secret from Django
settings (one app per deployment) and finish by logging a Django user in through a pipeline.
Here every tenant brings its own OAuth2 app, chosen at run time from a signed link, the
``generic`` provider has no backend at all, and the result is a mailbox with tokens, not a
session. The authorization-code flow with PKCE is two HTTP requests; written out here it is
small enough to audit (``flow.py``).
"""
