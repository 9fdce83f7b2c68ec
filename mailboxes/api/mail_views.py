"""The base of the routes that read or change an account's mailbox over IMAP (messages,
threads, search, folders, content, uploads, new exports)."""

from __future__ import annotations

from functools import cached_property

from accounts.models import EmailAccount
from emailapi.api.views import TenantScopedAPIView
from mailboxes.errors import MailboxNotFound, SendOnlyAccount


class MailboxAPIView(TenantScopedAPIView):
    """``email_account`` refuses a send-only account (no IMAP settings) with 409
    ``SendOnlyAccount`` in words, before anything looks at the index: its folders and
    messages are not empty, they do not exist, and an empty list would say otherwise.

    ``checked_on_miss``: a route that reads the index by the account's id alone and answers
    nothing without a folder (the listing's one query, a search of one folder) is checked
    only when that folder is not found, so its one round trip stays one; a send-only account
    has no folder, so its answer is the same 409."""

    checked_on_miss = False

    def initial(self, request, *args, **kwargs):
        """After authentication, before the handler (unless ``checked_on_miss``)."""
        super().initial(request, *args, **kwargs)
        if not self.checked_on_miss:
            self.email_account  # noqa: B018 - looked up (and cached) for its refusal

    def handle_exception(self, exc):
        if self.checked_on_miss and isinstance(exc, MailboxNotFound):
            try:
                self.email_account  # noqa: B018 - SendOnlyAccount, if that is why
            except Exception as refusal:  # noqa: BLE001 - answered as the route's own error
                exc = refusal
        return super().handle_exception(exc)

    @cached_property
    def email_account(self) -> EmailAccount:
        account = self.account_named(self.kwargs["account"])
        if not account.imap:
            raise SendOnlyAccount(account.account_id)
        return account
