"""Accounts (registered mailboxes): register, list, read, change, delete, test settings
(``verifyAccount``), reconnect, pause and resume. Thin views over ``accounts.services``.

``self.email_account`` (``TenantScopedAPIView``) searches only the caller's tenant: another
tenant's account is "not found", exactly like one that does not exist.
"""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.db.models import Count, Q
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from accounts import mail_hosts, mail_proxy, plans, services
from accounts.api import serializers as s
from accounts.api.verify_answer import with_status_codes
from accounts.errors import AlreadyExists, ProxyUnavailable, UnknownOAuth2App
from accounts.models import Credential, EmailAccount
from accounts.oauth2 import connect, registered_apps
from emailapi.api.pagination import paginate
from emailapi.api.views import ACCOUNT_PARAM, TenantScopedAPIView
from emailapi.lib import tunnels
from mailboxes import connection_settings, flush, listing, quota
from mailboxes.message_fields import iso
from mailboxes.verify import verify
from mailboxes.worker import holders
from webhooks import account_webhooks
from webhooks.models import Event


def account_context(tenant, email_accounts: list[EmailAccount]) -> dict:
    """What the account serializers show beyond the rows, read once for the page: the names
    of each account's stored secrets (shown masked) and its event counts (``counters``)."""
    secrets: dict[int, list[str]] = {}
    for pk, name in Credential.objects.filter(email_account__in=email_accounts).values_list(
            "email_account_id", "name"):
        secrets.setdefault(pk, []).append(name)
    counters: dict[str, dict[str, int]] = {}
    rows = (Event.objects.filter(tenant=tenant,
                                 account_id__in=[a.account_id for a in email_accounts])
            .values_list("account_id", "event").annotate(n=Count("id")).order_by())
    for account_id, event, count in rows:
        counters.setdefault(account_id, {})[event] = count
    return {"secrets": secrets, "counters": counters}


class AccountView(TenantScopedAPIView):
    """``POST /v1/account``: register a mailbox."""

    @extend_schema(
        operation_id="createAccount", tags=["Account"], request=s.AccountCreateSerializer,
        parameters=[s.AccountCreateQuerySerializer],
        responses={200: s.AccountCreatedSerializer},
        summary="Register (or update) a mailbox",
        description="Stores the settings; credentials are encrypted and never returned. "
                    "Credentials are not tested here: use verifyAccount first. As in "
                    "EmailEngine, an account id your tenant already has is updated with the "
                    "given fields (`imap`/`smtp` merge into the stored ones) and the answer "
                    "says `state: \"existing\"`; with `upsert=false` a taken id is 409 "
                    "AlreadyExists instead. 400 HostNotAllowed for an IMAP or SMTP host on an "
                    "internal (loopback, private, link-local...) address.",
    )
    def post(self, request):
        query = self.validated(s.AccountCreateQuerySerializer, request.query_params)
        data = self.validated(s.AccountCreateSerializer, request.data)
        if (data.get("oauth2") or {}).get("authorize"):
            return Response({"redirect": self._authorize(data, request, query["upsert"])})
        data = services.with_oauth2_app(self.tenant, data)
        hooks = "webhooks" in data or "webhooksCustomHeaders" in data
        existing = EmailAccount.of_tenant(self.tenant, data["account"]) \
            if hooks and data.get("account") and query["upsert"] else None
        if data.get("webhooks"):
            account_webhooks.check_url(existing, data["webhooks"])
        elif existing is not None and "webhooksCustomHeaders" in data and "webhooks" not in data:
            account_webhooks.check_headers_change(existing)
        if query["upsert"]:
            account, state = services.register_or_update_account(self.tenant, data)
        else:
            account, state = services.register_account(self.tenant, data), "new"
        if hooks:
            account_webhooks.follow_account_webhook(account, data.get("webhooksCustomHeaders"),
                                                    data.get("webhooks"))
        return Response({"account": account.account_id, "state": state})

    def _authorize(self, data: dict, request, upsert: bool) -> str:
        """EmailEngine's ``oauth2.authorize``: a connect link's OAuth2 sign-in, started here,
        the account's other settings sealed in the link and saved with it. What the
        registration would refuse is refused now, not after the user signed in."""
        oauth2 = data["oauth2"]
        app = registered_apps.find_app(self.tenant.pk, oauth2["provider"])
        if app is None:
            raise UnknownOAuth2App(oauth2["provider"], "oauth2.provider")
        account_id = data.get("account")
        existing = EmailAccount.of_tenant(self.tenant, account_id) if account_id else None
        if existing is not None:
            if not upsert:
                raise AlreadyExists(f"Account {account_id!r} already exists")
        else:
            plans.check_room_for_mailbox(self.tenant)
        given = {key: value for key, value in data.items()
                 if key not in s.AccountCreateSerializer.AUTHORIZE_FIELDS}
        if given.get("webhooks"):  # refused now, not after the user signed in
            account_webhooks.check_url(existing, given["webhooks"])
        base = request.build_absolute_uri("/")
        link = {"account": data.get("account"), "name": data.get("name") or None,
                "email": data.get("email") or (oauth2.get("auth") or {}).get("user"),
                "expectedEmail": data.get("expectedEmail"), "type": app.app_id,
                "redirectUrl": oauth2.get("redirectUrl") or connect.done_url(base),
                "settings": connect.sealed_settings(self.tenant, given) if given else None}
        return connect.authorize_url(self.tenant, link, base)


class AccountListView(TenantScopedAPIView):
    """``GET /v1/accounts``: the tenant's mailboxes, paged."""

    @extend_schema(
        operation_id="listAccounts", tags=["Account"], parameters=[s.AccountListQuerySerializer],
        responses={200: s.AccountListSerializer}, summary="List registered mailboxes",
        description="Your tenant's mailboxes, oldest first, with their live state. Paged with "
                    "`page` (from 0) and `pageSize` (1-1000).",
    )
    def get(self, request):
        query = self.validated(s.AccountListQuerySerializer, request.query_params)
        accounts = EmailAccount.objects.filter(tenant=self.tenant).order_by("created_at", "id")
        if "state" in query:  # the state shown: no live worker, no "connected"
            accounts = accounts.filter(holders.state_filter(query["state"]))
        if query.get("query"):
            text = query["query"]
            accounts = accounts.filter(
                Q(account_id__icontains=text) | Q(name__icontains=text) | Q(email__icontains=text)
            )
        items, counters = paginate(accounts, query["page"], query["pageSize"])
        if not counters["total"]:
            counters["pages"] = 0  # EmailEngine's count of pages of nothing
        holders.apply_live_state(items)
        context = account_context(self.tenant, items)
        context["sync_times"] = listing.sync_times(items)
        return Response({
            "accounts": s.AccountListItemSerializer(items, many=True, context=context).data,
            **counters,
            "query": query.get("query") or False,
            "state": query.get("state") or "*",
        })


class AccountDetailView(TenantScopedAPIView):
    """``GET/PUT/DELETE /v1/account/{account}``."""

    @extend_schema(operation_id="getAccount", tags=["Account"],
                   parameters=[ACCOUNT_PARAM, s.AccountDetailQuerySerializer],
                   responses={200: s.AccountDetailSerializer},
                   summary="Mailbox settings and state",
                   description="Connection settings without any secret, the connection `state`, "
                               "`lastError` and timestamps; `?quota=true` adds the storage "
                               "quota, asked of the mail server.")
    def get(self, request, account):
        query = self.validated(s.AccountDetailQuerySerializer, request.query_params)
        email_account = self.email_account
        found_quota = quota.storage_quota(email_account) if query["quota"] else None
        if found_quota is False:  # the state and lastError its attempt left are the answer's
            email_account.refresh_from_db()
        holders.apply_live_state([email_account])
        context = account_context(self.tenant, [email_account])
        context["webhook_headers"] = {
            email_account.pk: account_webhooks.header_names_of(email_account)}
        data = s.AccountSerializer(email_account, context=context).data
        data["syncTime"] = iso(listing.sync_time(email_account))
        if query["quota"]:
            data["quota"] = found_quota
        return Response(data)

    @extend_schema(
        operation_id="updateAccount", tags=["Account"], parameters=[ACCOUNT_PARAM],
        request=s.AccountUpdateSerializer, responses={200: s.AccountUpdatedSerializer},
        summary="Update a mailbox (partial)",
        description="Only the given fields change; `imap` and `smtp` merge into the stored "
                    "settings. A new password takes effect on the next connection. A new "
                    "host on an internal address is 400 HostNotAllowed.",
    )
    def put(self, request, account):
        email_account = self.email_account
        data = self.validated(s.AccountUpdateSerializer, request.data, partial=True,
                              context={"account": email_account})
        if data.get("webhooks"):
            account_webhooks.check_url(email_account, data["webhooks"])
        elif "webhooksCustomHeaders" in data and "webhooks" not in data:
            account_webhooks.check_headers_change(email_account)
        email_account = services.update_account(email_account, data)
        if "webhooks" in data or "webhooksCustomHeaders" in data:
            account_webhooks.follow_account_webhook(email_account,
                                                    data.get("webhooksCustomHeaders"),
                                                    data.get("webhooks"))
        return Response({"account": email_account.account_id, "state": email_account.state})

    @extend_schema(operation_id="deleteAccount", tags=["Account"],
                   parameters=[ACCOUNT_PARAM, s.AccountDeleteQuerySerializer],
                   responses={200: s.AccountDeletedSerializer}, summary="Delete a mailbox",
                   description="Removes the mailbox, its credentials and its indexed data. "
                               "`revoke=true` first revokes an OAuth2 mailbox's grant at the "
                               "provider (best effort: the delete happens either way).")
    def delete(self, request, account):
        email_account = self.email_account
        query = self.validated(s.AccountDeleteQuerySerializer, request.query_params)
        services.delete_account(email_account, revoke=query["revoke"],
                                along=account_webhooks.drop_account_webhook)
        return Response({"account": email_account.account_id, "deleted": True})


class VerifyAccountView(TenantScopedAPIView):
    """``POST /v1/verifyAccount``: try settings for real, save nothing."""

    @extend_schema(
        operation_id="verifyAccount", tags=["Account"], request=s.VerifyAccountSerializer,
        responses={200: s.VerifyResponseSerializer}, summary="Test IMAP/SMTP settings",
        description="Logs in to IMAP (and lists folders) and to SMTP (EHLO, STARTTLS when "
                    "offered, AUTH) within a timeout, and reports success or the server's "
                    "error for each. Nothing is stored. A host on an internal address is "
                    "400 HostNotAllowed, and not tried. Both go through `proxy`, or without "
                    "one through the settings' `proxyUrl` while `proxyEnabled`.",
    )
    def post(self, request):
        data = self.validated(s.VerifyAccountSerializer, request.data)
        mail_hosts.check(self.tenant, data)  # 400 HostNotAllowed
        tenant = self.tenant
        imap = connection_settings.imap_settings_from(data["imap"], tenant=tenant) if data.get("imap") \
            else None
        smtp = connection_settings.smtp_settings_from(data["smtp"], tenant=tenant) if data.get("smtp") \
            else None
        try:  # EmailEngine's: the given proxy, else the tenant's proxyUrl while enabled
            proxy = tunnels.parse(data["proxy"]) if (data.get("proxy") or "").strip() \
                else mail_proxy.tenant_proxy(tenant.pk)
        except mail_proxy.ProxyUnusable as exc:
            raise ProxyUnavailable(str(exc)) from None
        if proxy is not None:  # both checks connect through it
            imap = replace(imap, proxy=proxy) if imap is not None else None
            smtp = replace(smtp, proxy=proxy) if smtp is not None else None
        result = verify(imap, smtp, timeout=settings.EMAILAPI_VERIFY_TIMEOUT,
                        list_mailboxes=data["mailboxes"])
        return Response(with_status_codes(result))


class AccountActionView(TenantScopedAPIView):
    """Shared body of ``PUT /v1/account/{account}/reconnect|pause|resume``."""

    def act(self, request, account, action: str) -> Response:
        email_account = self.email_account
        data = self.validated(s.AccountActionSerializer, request.data)
        if action == "reconnect":
            # EmailEngine's ``{"reconnect": false}`` asks for nothing; an empty body reconnects.
            wanted = data.get("reconnect", True)
            if wanted:
                services.request_reconnect(email_account)
            return Response({"reconnect": wanted})
        if action == "pause":
            email_account = services.pause_account(email_account)
        else:
            email_account = services.resume_account(email_account)
        return Response({"account": email_account.account_id, "state": email_account.state})


def _action_schema(action: str, response, summary: str, description: str):
    return extend_schema(operation_id=f"{action}Account", tags=["Account"],
                         parameters=[ACCOUNT_PARAM], request=None, responses={200: response},
                         summary=summary, description=description)


class AccountReconnectView(AccountActionView):
    @_action_schema(
        "reconnect", s.ReconnectSerializer, "Reconnect now",
        "Drops the mailbox's IMAP connection and connects afresh (the worker holding it acts "
        "within a second). Useful after fixing something on the server side.")
    def put(self, request, account):
        return self.act(request, account, "reconnect")


class AccountPauseView(AccountActionView):
    @_action_schema(
        "pause", s.AccountUpdatedSerializer, "Pause syncing",
        "Logs out and stops syncing until resumed; state becomes `paused`. Nothing is deleted.")
    def put(self, request, account):
        return self.act(request, account, "pause")


class AccountResumeView(AccountActionView):
    @_action_schema(
        "resume", s.AccountUpdatedSerializer, "Resume syncing",
        "A worker claims the mailbox within seconds and catches up on what changed meanwhile.")
    def put(self, request, account):
        return self.act(request, account, "resume")


class AccountSyncView(TenantScopedAPIView):
    """``PUT /v1/account/{account}/sync``: EmailEngine's "sync now"."""

    @extend_schema(
        operation_id="syncAccount", tags=["Account"], parameters=[ACCOUNT_PARAM],
        request=s.SyncRequestSerializer, responses={200: s.SyncResponseSerializer},
        summary="Sync now",
        description="With `{\"sync\": true}` (as EmailEngine, nothing happens without it) "
                    "the worker holding the mailbox looks at every folder at once instead of "
                    "at its next poll (changes in the watched folder arrive through IDLE "
                    "anyway). Answers before the sync ends.")
    def put(self, request, account):
        email_account = self.email_account
        data = self.validated(s.SyncRequestSerializer, request.data)
        if data["sync"]:
            services.request_sync(email_account)
        return Response({"sync": data["sync"]})


class AccountFlushView(TenantScopedAPIView):
    """``PUT /v1/account/{account}/flush``: forget the index and build it again."""

    @extend_schema(
        operation_id="flushAccount", tags=["Account"], parameters=[ACCOUNT_PARAM],
        request=s.FlushRequestSerializer, responses={200: s.FlushResponseSerializer},
        summary="Rebuild the index",
        description="With `{\"flush\": true}` (as EmailEngine, nothing happens without it) "
                    "the folders and messages indexed for the mailbox are deleted and the "
                    "worker reconnects and indexes everything again, silently like a first "
                    "sync: `notifyFrom` (default now) is set so that no `messageNew` is "
                    "raised for mail older than it. Message ids change. Answers before the "
                    "rebuild ends.")
    def put(self, request, account):
        email_account = self.email_account
        data = self.validated(s.FlushRequestSerializer, request.data)
        if data["flush"]:
            if "imapIndexer" in data or "syncFrom" in data:
                services.update_account(email_account, {
                    key: data[key] for key in ("imapIndexer", "syncFrom") if key in data})
            flush.flush_index(email_account, data.get("notifyFrom"))
        return Response({"flush": data["flush"]})
