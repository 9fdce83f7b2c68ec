"""The base of the routes that read or change an account's mailbox over IMAP (messages,
threads, search, folders, content, uploads, new exports)."""

from __future__ import annotations

from functools import cached_property

from accounts.models import EmailAccount
from emailapi.api.views import TenantScopedAPIView
from mailboxes.errors import SendOnlyAccount


class MailboxAPIView(TenantScopedAPIView):
    """``email_account`` refuses a send-only account (no IMAP settings) with 409
    ``SendOnlyAccount`` in words, before anything looks at the index: its folders and
    messages are not empty, they do not exist, and an empty list would say otherwise.

    ``checked_by_service``: a route that finds its folder with the account in the query that
    answers it (the listing's one query, a search of one folder: ``listing.tenant_page`` and
    ``listing.tenant_folder`` raise ``SendOnlyAccount`` themselves) is not looked up first, so
    its one round trip stays one."""

    checked_by_service = False

    def initial(self, request, *args, **kwargs):
        """After authentication, before the handler (unless ``checked_by_service``)."""
        super().initial(request, *args, **kwargs)
        if not self.checked_by_service:
            self.email_account  # noqa: B018 - looked up (and cached) for its refusal

    @cached_property
    def email_account(self) -> EmailAccount:
        account = self.account_named(self.kwargs["account"])
        if not account.imap:
            raise SendOnlyAccount(account.account_id)
        return account
