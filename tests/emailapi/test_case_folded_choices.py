"""``CaseFoldedChoiceField``: a choice EmailEngine's Joi lower-cases before validating is taken
in any case and kept as spelled here; nothing else is let through."""

from __future__ import annotations

import pytest

from emailapi.api.serializers import CaseFoldedChoiceField, StrictSerializer


class Sample(StrictSerializer):
    action = CaseFoldedChoiceField(choices=["reply", "replyAll", "forward"], required=False)


def valid(data: dict) -> dict | None:
    serializer = Sample(data=data)
    return dict(serializer.validated_data) if serializer.is_valid() else None


@pytest.mark.parametrize("given, kept", [
    ("reply", "reply"), ("Reply", "reply"), ("FORWARD", "forward"),
    ("replyAll", "replyAll"), ("REPLYALL", "replyAll"), ("replyall", "replyAll"),
])
def test_any_case_is_the_choice_as_spelled_here(given, kept):
    assert valid({"action": given}) == {"action": kept}


@pytest.mark.parametrize("given", ["archive", "Réply", "reply ", "", 1, ["reply"]])
def test_what_is_no_choice_in_any_case_is_refused(given):
    assert valid({"action": given}) is None
