"""OAuth2 mailboxes: provider presets, the authorization-code flow with PKCE, signed connect
links, token refresh, and IMAP/SMTP settings discovery.

Gmail, Outlook and Yahoo sign-ins go through social-auth's own backends (``GoogleOAuth2``,
``MicrosoftOAuth2``, ``YahooOAuth2``), which carry each provider's request details. Two
things in social-auth do not fit, and ``social.py`` replaces them: settings come from Django
settings (one app per deployment), whereas here every tenant brings its own OAuth2 app,
chosen at run time from a signed link, so a strategy answers from that app's row; and its
flow ends by fetching a profile and logging a Django user in through a pipeline, whereas
here the result is a mailbox with tokens, so we stop at the token answer. The ``generic``
provider has no backend; its two HTTP requests are written out in ``flow.py``.
"""
