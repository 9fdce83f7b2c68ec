"""The operators' sign-in (``/admin/login/``), limited exactly like the dashboard's ``/login``.

Both pages count failures in the same Redis counters (``accounts.web.login_limit``: per email
address and per client address), so a guesser gets no more tries by switching pages, and a
blocked address is refused with one message whether the password is right or not. Installed
as ``admin.site.login_form`` by ``accounts.admin``.
"""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from accounts.web import login_limit

TOO_MANY = "Too many failed sign-in attempts. Wait 15 minutes and try again."


class LimitedAdminLoginForm(AdminAuthenticationForm):
    error_messages = {**AdminAuthenticationForm.error_messages, "too_many_attempts": TOO_MANY}

    def clean(self):
        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if email is None or not password:
            return super().clean()  # the missing field has its own error
        client = login_limit.client_address(self.request)
        if login_limit.blocked(email, client):
            raise ValidationError(self.error_messages["too_many_attempts"],
                                  code="too_many_attempts")
        try:
            super().clean()
        except ValidationError:
            # A wrong password (or no such user) is a failure; a right password of someone
            # who is not staff is refused by the admin but guessed nothing.
            if self.user_cache is None:
                login_limit.record_failure(email, client)
            raise
        login_limit.clear(email)
        return self.cleaned_data
