"""Adding a mailbox without handling its password: hosted connect links (an end user signs
in on our page, by OAuth2 or an IMAP password form) and settings discovery for an address.
Thin views over ``accounts.oauth2.connect`` and ``accounts.oauth2.discovery``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from accounts.api import oauth2_serializers as s
from accounts.errors import UnknownOAuth2App
from accounts.oauth2 import connect, discovery, registered_apps
from emailapi.api.views import TenantScopedAPIView


class AuthenticationFormView(TenantScopedAPIView):
    """``POST /v1/authentication/form``: a hosted connect link for an end user."""

    @extend_schema(operation_id="createAuthenticationForm", tags=["Account"],
                   request=s.AuthenticationFormSerializer,
                   responses={200: s.AuthenticationFormResultSerializer},
                   summary="Make a hosted connect link",
                   description="A signed, single-use URL to a page where your user signs in "
                               "(OAuth2 with your app of that provider, or an IMAP password "
                               "form tested before saving). On success the mailbox is "
                               "registered (`accountAdded`) or, if `account` exists, "
                               "reconnected, and the browser goes to `redirectUrl` with "
                               "`account` and `state` (`new`/`existing`). `path`, "
                               "`notifyFrom` and `subconnections` are saved with the "
                               "account. Valid for EMAILAPI_CONNECT_LINK_TTL seconds "
                               "(default 3600).")
    def post(self, request):
        data = self.validated(s.AuthenticationFormSerializer, request.data)
        kind = data.get("type")
        if kind not in (None, connect.IMAP) and \
                registered_apps.find_app(self.tenant.pk, kind) is None:
            raise UnknownOAuth2App(kind, "type")
        longest = max(data, key=lambda key: len(str(data[key])))  # what a too long link blames
        given = {key: data.pop(key) for key in s.AuthenticationFormSerializer.ACCOUNT_SETTINGS
                 if key in data}
        if given:  # sealed: the link is in the end user's hands
            data["settings"] = connect.sealed_settings(self.tenant, given)
        base = request.build_absolute_uri("/")
        return Response({"url": connect.make_link(self.tenant, data, base, longest)})


class AutoconfigView(TenantScopedAPIView):
    """``GET /v1/autoconfig?email=``: suggested IMAP/SMTP settings."""

    # The MX lookup; tests replace it so no DNS query leaves the machine.
    mx_lookup = staticmethod(discovery.dns_mx_lookup)

    @extend_schema(operation_id="discoverSettings", tags=["Account"],
                   parameters=[s.AutoconfigQuerySerializer],
                   responses={200: s.AutoconfigSerializer}, summary="Discover server settings",
                   description="IMAP/SMTP settings for an address from the built-in table of "
                               "common providers, else from its domain's MX hosts (Google "
                               "Workspace, Microsoft 365, ...). `oauth2` names the provider "
                               "whose sign-in such a mailbox needs. Nulls when unknown. "
                               "EmailEngine's `imap.auth.user`/`smtp.auth.user` (the "
                               "address), `_source` (our `source`) and `appPassword` "
                               "(`{required, provider, instructions}` for providers that "
                               "want an app password, else null) are there too.")
    def get(self, request):
        email = self.validated(s.AutoconfigQuerySerializer, request.query_params)["email"]
        return Response(discovery.answer(email, discovery.discover(email, self.mx_lookup)))
