"""The dashboard's answer to a service's refusal (an ``emailapi.lib.errors.DomainError``).

The API turns a refusal into a status and a JSON body (``emailapi.api.errors``); a page shows
its message on the form that asked, next to the field it is about when there is one. Views
say which classes belong to which field; nothing here looks at code strings."""

from __future__ import annotations

from django import forms

from emailapi.lib.errors import DomainError


def show_on_form(form: forms.Form, error: DomainError,
                 fields: dict[type[DomainError], str] | None = None) -> None:
    """Put ``error``'s message on ``form``: on the field ``fields`` names for its class (the
    first class that matches), else on the form as a whole."""
    field = next((name for cls, name in (fields or {}).items() if isinstance(error, cls)), None)
    form.add_error(field, error.message)
