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
    messages are not empty, they do not exist, and an empty list would say otherwise."""

    def initial(self, request, *args, **kwargs):
        """After authentication, before the handler: the listing and search handlers read
        the index by the id alone (no account row), so the check cannot wait for them."""
        super().initial(request, *args, **kwargs)
        self.email_account  # noqa: B018 - looked up (and cached) for its refusal

    @cached_property
    def email_account(self) -> EmailAccount:
        account = self.account_named(self.kwargs["account"])
        if not account.imap:
            raise SendOnlyAccount(account.account_id)
        return account
