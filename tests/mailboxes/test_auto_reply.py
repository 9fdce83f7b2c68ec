"""``mailboxes.auto_reply``: EmailEngine's ``isAutoreply`` rules, rule for rule (pure)."""

from __future__ import annotations

import pytest

from mailboxes.auto_reply import is_auto_reply


@pytest.mark.parametrize("subject", [
    "Automatic reply: Lunch?", "Auto reply: Lunch?", "Autoreply: Lunch?", "AUTO RESPONSE",
    "Automatic response: ticket", "Out of Office: back Monday", "Out of the Office until 3 May",
    "out of office", "OOF: away", "OOO: travelling",
])
def test_it_flags_the_subjects_emailengine_flags(subject):
    assert is_auto_reply(subject, None, None) is True


@pytest.mark.parametrize("subject", [
    "Re: Automatic reply", "Lunch?", "", None, "Outof Office", "Auto:", "Automatically yours",
])
def test_it_leaves_other_subjects_alone(subject):
    assert is_auto_reply(subject, None, {}) is False


def test_auto_colon_needs_an_in_reply_to():
    assert is_auto_reply("Auto: away", None, None) is False
    assert is_auto_reply("Auto: away", "<m1@example.test>", None) is True


@pytest.mark.parametrize("headers", [
    {"auto-submitted": ["auto-replied"]},
    {"auto-submitted": ["auto-replied; owner-email=\"a@example.test\""]},
    {"auto-submitted": ["auto_replied"]},
    {"precedence": ["auto_reply"]},
    {"precedence": ["bulk", "auto-reply"]},
    {"x-auto-response-suppress": ["All"]},
    {"x-autoresponder": ["yes"]},
    {"x-autorespond": [""]},
    {"x-autoreply": ["yes"]},
])
def test_it_flags_the_headers_emailengine_flags(headers):
    assert is_auto_reply("Lunch?", None, headers) is True


@pytest.mark.parametrize("headers", [
    {"auto-submitted": ["auto-generated"]},  # a notification, not a reply
    {"auto-submitted": ["no"]},
    {"auto-submitted": ["Auto-Replied"]},  # compared case-sensitively, as EmailEngine does
    {"precedence": ["bulk"]},
    {"precedence": ["list"]},
    {"x-autoreply": []},
    {"subject": ["Automatic reply"]},  # the subject decides from the subject argument only
])
def test_it_leaves_other_headers_alone(headers):
    assert is_auto_reply("Lunch?", None, headers) is False


def test_without_headers_only_the_subject_decides():
    assert is_auto_reply("Lunch?", None, None) is False
