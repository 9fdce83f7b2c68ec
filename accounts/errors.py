"""What the accounts services refuse, one class per machine code (see ``emailapi.lib.errors``).

The API answers each with its kind's status (``emailapi.api.errors``); the dashboard shows
the message on its form (``accounts.web.errors``)."""

from __future__ import annotations

from emailapi.lib.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    PaymentRequired,
    Unavailable,
)


class AccountNotFound(NotFound):
    code = "AccountNotFound"

    def __init__(self, account_id: str):
        super().__init__(f"Account {account_id!r} not found")


class AlreadyExists(Conflict):
    """A mailbox account or OAuth2 app id already taken in the tenant."""

    code = "AlreadyExists"


class HostNotAllowed(Invalid):
    """A mailbox's (or OAuth2 app's) IMAP/SMTP host on an internal address."""

    code = "HostNotAllowed"

    def __init__(self, section: str, reason: str):
        self.section, self.reason = section, reason
        super().__init__(
            f"{section}.host: {reason}; mail servers on internal addresses are not allowed",
            {f"{section}.host": [reason]})


class InvalidInput(Invalid):
    """A value the API's serializers let through but the service cannot take (the classes
    below say which); answered as any validation error."""

    code = "InputValidationError"


class IncompleteServer(InvalidInput):
    """A partial change of a server section (``smtp``/``imap``) the account does not have:
    the merge would leave it without a host or a port, which no connection can use."""

    def __init__(self, section: str, missing: list[str],
                 why: str = "the account has no {section} server to change"):
        super().__init__(
            f"Invalid input: {section}.{missing[0]}: required, as {why.format(section=section)}",
            {f"{section}.{key}": ["This field is required."] for key in missing})


class SecretNeeded(InvalidInput):
    """A change that would send a stored password or token somewhere it was not given for,
    without a new one: a server moved to another host, a proxy set or changed (the proxy
    picks the server the connection reaches), or TLS weakened (``secure`` turned off, the
    certificate check turned off: either lets whoever is on the way stand in for the
    server). Whoever may change a mailbox's settings must not be able to collect its password
    at a server of their choosing (``accounts.secret_routes``).

    ``changed``: what moved (``host``, ``proxy``, ``secure``, ``rejectUnauthorized``);
    ``oauth2``: the account signs in with OAuth2 tokens, which only a new sign-in replaces."""

    def __init__(self, section: str, changed: str = "host", oauth2: bool = False):
        self.section = section
        self.changed = changed
        what = {"host": f"{section}.host changes",
                "proxy": "proxy is set or changed",
                "secure": f"{section}.secure turns false",
                "rejectUnauthorized": f"{section}.tls.rejectUnauthorized turns false"}[changed]
        if oauth2:
            field = "oauth2"
            reason = (f"a new sign-in is required when {what}: the stored OAuth2 tokens are only "
                      f"ever sent to the server they were given for (sign the mailbox in again: "
                      f"a connect link, or POST /v1/account with oauth2)")
        else:
            field = f"{section}.auth.pass"
            reason = (f"required when {what}: the stored password is only ever sent to the "
                      f"server it was given for")
            if changed != "host":
                reason += ", the way it was given for"
        super().__init__(f"Invalid input: {field}: {reason}", {field: [reason]})


class ClientSecretNeeded(InvalidInput):
    """An OAuth2 app's token endpoint moved to another host without a new client secret:
    the first sign-in would post the stored one there (as ``SecretNeeded`` for a mailbox)."""

    def __init__(self):
        reason = ("required when tokenUrl moves to another host: the stored client secret is "
                  "only ever sent to the host it was given for")
        super().__init__(f"Invalid input: clientSecret: {reason}", {"clientSecret": [reason]})


class TokenHostInUse(InvalidInput):
    """An OAuth2 app's token endpoint moved to another host while mailboxes use the app:
    their refresh tokens (and the client secret) would go there at the next refresh."""

    def __init__(self, mailboxes: int):
        reason = (f"{mailboxes} mailbox(es) signed in with this app would send their refresh "
                  f"tokens to another host: register a new app and connect them with it")
        super().__init__(f"Invalid input: tokenUrl: {reason}", {"tokenUrl": [reason]})


class OAuth2AppNotFound(NotFound):
    """The OAuth2 app a route names is not the tenant's, or was deleted while it was being
    changed."""

    code = "OAuth2AppNotFound"
    ee_code = "NotFound"

    def __init__(self, app_id: str):
        super().__init__(f"OAuth2 app {app_id!r} not found")


class UnknownOAuth2App(Invalid):
    """A request body names an OAuth2 app the tenant does not have (a connect link's ``type``,
    an account's ``oauth2.provider``): the request is wrong, as for any bad value (400)."""

    code = "OAuth2AppNotFound"

    def __init__(self, app_id: str, field: str):
        reason = (f"No OAuth2 app {app_id!r} in your tenant: register one with "
                  f"POST /v1/oauth2")
        super().__init__(reason, {field: [reason]})


class TokenLimitedToAccount(Forbidden):
    """An account token (EmailEngine's) used outside the routes of its account."""

    code = "TokenLimitedToAccount"

    def __init__(self, account_id: str):
        super().__init__(f"This token is limited to account {account_id!r}")


class PlanLimit(Forbidden):
    code = "PlanLimit"

    def __init__(self, limit: int, count: int):
        super().__init__(f"Your plan allows {limit} mailboxes; remove one or upgrade the plan.",
                         {"limit": limit, "count": count})


class TenantSuspended(Forbidden):
    code = "TenantSuspended"
    message = "This organization is suspended: contact support."


class TrialExpired(PaymentRequired):
    code = "TrialExpired"
    message = ("The free trial of this organization has ended: choose a plan to continue. "
               "Nothing has been deleted.")


class LinkInvalid(Invalid):
    """A signed link (a hosted connect link, a list message's unsubscribe link) that is
    malformed or was not signed by us."""

    code = "InvalidLink"
    message = "This link is not valid."


class LinkIncomplete(LinkInvalid):
    message = "This link is incomplete."


class LinkSignatureInvalid(LinkInvalid):
    code = "InvalidSignature"


class LinkExpired(Gone):
    code = "LinkExpired"
    message = "This link has expired. Ask for a new one."


class LinkUsed(Gone):
    code = "LinkUsed"
    message = "This link was already used. Ask for a new one."


# Everything reading a hosted connect link can refuse it with.
LINK_ERRORS = (LinkInvalid, LinkExpired, LinkUsed)


class ProxyPasswordNeeded(InvalidInput):
    """A proxy URL written with the mask (``******``) for its password where no stored password
    may stand in: none is stored, or the URL now names another proxy (scheme, host or port). As
    ``SecretNeeded``: a stored password is only ever sent to the proxy it was given for."""

    def __init__(self, field: str, moved: bool):
        self.field = field
        reason = ("the password is required when the proxy's scheme, host or port changes: the "
                  "stored password is only ever sent to the proxy it was given for" if moved
                  else "****** stands for a stored password, and none is stored: write the "
                       "password itself")
        super().__init__(f"Invalid input: {field}: {reason}", {field: [reason]})


class ProxyUnavailable(Unavailable):
    """The tenant's proxy (``proxyUrl``) a check would go through cannot be used (its password
    sealed with a key no longer configured): not checked around it."""

    code = "ProxyError"
