"""Webhooks in a real browser: create one, send a test event, then see the delivery of a real
``messageNew`` (Dovecot → IMAP worker → dispatcher → loopback receiver) in the delivery log."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import EmailAccount
from accounts.web import onboarding
from tests.dashboard.conftest import screenshot, wait_for
from tests.mailboxes.helpers import register
from tests.servers import seed

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "Correct-Horse-Battery-9"


def test_create_a_webhook_test_it_and_see_a_delivery_after_mail_arrives(
        page, web_server, mail_user, imap_worker, server_passwords, settings,
        webhook_receiver, start_dispatcher):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOK_POLL_INTERVAL = 1
    tenant, _ = onboarding.sign_up("Hooks Inc", "dev@hooks.test", PASSWORD)
    account = register(tenant, mail_user)
    wait_for(lambda: EmailAccount.objects.get(pk=account.pk).state == "connected")
    receiver = webhook_receiver()
    start_dispatcher()

    page.goto("/login")
    page.get_by_label("Email").fill("dev@hooks.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("Endpoint URL").fill("ftp://nowhere")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#id_url_error")).to_be_visible()
    expect(page.get_by_label("Endpoint URL")).to_have_value("ftp://nowhere")
    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_label("Events").fill("messageNew")
    page.get_by_role("button", name="Add webhook").click()
    expect(page).to_have_url(re.compile(r"/dashboard/webhooks/[0-9a-f-]{36}$"))
    assert page.get_by_test_id("webhook-secret").input_value().startswith("whsec_")

    page.get_by_role("button", name="Send a test event").click()
    expect(page.locator(".flash")).to_contain_text("Test event delivered: HTTP 200")
    assert receiver.requests[0].payload["event"] == "test"

    seed.seed_mailbox(mail_user, messages=[seed.make_message(subject="Hello hooks")])
    wait_for(lambda: any(r.payload["event"] == "messageNew" for r in receiver.requests))
    page.reload()
    log = page.get_by_test_id("delivery-log")
    expect(log).to_contain_text("messageNew")
    expect(log).to_contain_text("delivered")
    log.get_by_text("messageNew").first.click()
    expect(log).to_contain_text("Hello hooks")
    log.get_by_text("Answer").first.click()  # the receiver's own answer, as it came
    expect(log.get_by_test_id("delivery-response").first).to_have_text('{"ok":true}')
    screenshot(page, "webhook-detail")
