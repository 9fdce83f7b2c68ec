"""``GET /v1/account/{account}/message/{id}`` as EmailEngine's: ``isAutoReply`` from the
subject and the headers, and the web-safe HTML's folded thread history, against real
Dovecot."""

from __future__ import annotations

import pytest

from tests.servers import seed

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]

QUOTED = "Let's meet tomorrow at 10am in the big room, bring the numbers please. " * 3


@pytest.fixture
def inbox_messages():
    return {
        "by_header": seed.make_message(subject="Away", headers={
            "Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}),
        "by_subject": seed.make_message(subject="Out of Office: back Monday"),
        "weak_subject": seed.make_message(subject="Auto: away", in_reply_to="<m1@example.test>"),
        "notification": seed.make_message(subject="Build failed",
                                          headers={"Auto-Submitted": "auto-generated"}),
        "reply": seed.make_message(
            subject="Re: Meeting", body="Works for me.\n",
            html=('<div>Works for me.</div><div class="gmail_quote">On Monday Jane wrote:'
                  f'<blockquote class="gmail_quote">{QUOTED}</blockquote></div>')),
    }


def _message(synced, name: str, **params) -> dict:
    response = synced.client.get(f"/v1/account/box/message/{synced.id_of[name]}", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_auto_submitted_auto_replied_is_an_auto_reply(synced):
    assert _message(synced, "by_header")["isAutoReply"] is True


def test_without_the_headers_only_the_subject_decides(synced):
    assert "isAutoReply" not in _message(synced, "by_header", headers="false")
    assert _message(synced, "by_subject", headers="false")["isAutoReply"] is True


def test_auto_colon_with_an_in_reply_to_is_an_auto_reply(synced):
    assert _message(synced, "weak_subject")["isAutoReply"] is True


def test_other_automatic_mail_is_not_flagged(synced):
    assert "isAutoReply" not in _message(synced, "notification")
    assert "isAutoReply" not in _message(synced, "reply")


def test_web_safe_html_folds_the_quoted_thread(synced):
    html = _message(synced, "reply", webSafeHtml="true")["text"]["html"]
    assert html.startswith('<div>Works for me.</div><details class="ee-collapsed-thread">'
                           '<summary class="ee-collapsed-thread-toggle"></summary>')
    assert html.endswith("</details>")
