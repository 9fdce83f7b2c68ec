"""A tour of every dashboard page, for the layout test (``test_browser_layout.py``) and
``make screenshots`` (``screenshots.py``).

``seed`` fills one organization as a customer's would look after a week: a connected mailbox
with mail (one message undated), one whose password changed (``authenticationError``), tokens,
a webhook that works and one whose receiver refuses connections (with custom headers and an
account id that names no mailbox), an OAuth2 app, a viewer and a pending invitation. Real
servers do the work: Dovecot, an IMAP worker, the webhook dispatcher and receiver.

``crawl`` finds the pages by following the links of the signed-in dashboard (so a page added
later is visited without being listed here), plus the public pages and the operators' admin.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from accounts import services
from accounts.models import EmailAccount, Invitation, Membership, User
from accounts.oauth2 import registered_apps
from accounts.web import onboarding
from mailboxes.models import Message
from tests.base import wait_for
from tests.mailboxes.helpers import register
from tests.servers import seed as mail_seed
from tests.servers.net import find_free_port
from webhooks import subscriptions
from webhooks.models import Delivery

PASSWORD = "Correct-Horse-Battery-9"
OWNER = "owner@northwind.test"
OPERATOR = "operator@emailapi.test"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
PUBLIC_PAGES = ["/login", "/signup", "/password-reset"]
MAX_PAGES = 60
MAX_PER_KIND = 3  # e.g. at most 3 message pages of one folder


@dataclass
class Seeded:
    tenant: object
    account: EmailAccount
    broken: EmailAccount
    failing_webhook: object


def undated_message(subject: str) -> bytes:
    message = mail_seed.build_email(subject=subject,
                                    from_="Ósk Dóttir <osk@example.test>", body="No date.\n")
    del message["Date"]
    return message.as_bytes()


def seed(dovecot, mail_user, webhook_receiver, start_dispatcher) -> Seeded:
    """The organization of the tour (the caller runs an IMAP worker)."""
    tenant, owner = onboarding.sign_up("Northwind Trading", OWNER, PASSWORD)
    User.objects.filter(pk=owner.pk).update(email_verified_at=datetime.now(UTC))
    now = datetime.now(UTC)
    dated = [mail_seed.make_message(subject=f"Order {n} confirmed",
                                    from_="Valentina Jensen <vj@example.test>",
                                    date=now.replace(microsecond=0)) for n in (1041, 1042)]
    mail_seed.seed_mailbox(mail_user, messages=[*mail_seed.build_messages(), *dated])
    client = mail_user.imap_client()
    try:  # undated, arrived long ago: it sorts by its arrival, last
        client.append("INBOX", undated_message("Undated note"),
                      msg_time=datetime(2020, 1, 2, 3, 4, tzinfo=UTC))
    finally:
        client.logout()
    account = register(tenant, mail_user, "sales", name="Sales desk",
                       email=mail_user.email)
    changed = dovecot.add_user()
    broken = register(tenant, changed, "support", name="Support", email=changed.email)
    dovecot.add_user(changed.username, "a-new-password-nobody-told-us")

    services.issue_token(tenant, "backend", ["api"], created_by=owner)
    services.issue_token(tenant, "reporting (read only)", ["metrics"], created_by=owner)
    receiver = webhook_receiver()
    subscriptions.create(tenant, {"url": receiver.url, "events": ["*"]})
    failing, _ = subscriptions.create(tenant, {
        "url": f"http://127.0.0.1:{find_free_port()}/emailapi/hooks/very-long-path-name",
        "events": ["*"],
        "accounts": ["sales", "sales-typo"], "headers": {"Authorization": "Bearer abc",
                                                        "X-Team": "ops"}})
    registered_apps.create_app(tenant, {"app": "google", "provider": "gmail",
                                        "clientId": "1234567890-abcdefghijklmnop"
                                                    ".apps.googleusercontent.com",
                                        "clientSecret": "not-a-real-secret"})
    viewer = User.objects.create_user(email="viewer@northwind.test", password=PASSWORD,
                                      email_verified_at=now)
    Membership.objects.create(tenant=tenant, user=viewer, role=Membership.Role.VIEWER)
    Invitation.objects.create(tenant=tenant, email="new.colleague@northwind.test",
                              role=Membership.Role.ADMIN, invited_by=owner, key="k" * 32,
                              expires_at=now.replace(year=now.year + 1))
    if not User.objects.filter(email=OPERATOR).exists():
        User.objects.create_superuser(OPERATOR, PASSWORD)

    start_dispatcher()
    started = time.monotonic()
    wait_for(lambda: EmailAccount.objects.get(pk=account.pk).state == "connected", timeout=60)
    wait_for(lambda: Message.objects.filter(email_account=account).count() >= 9, timeout=60)
    wait_for(lambda: EmailAccount.objects.get(pk=broken.pk).state == "authenticationError",
             timeout=60)
    wait_for(lambda: Delivery.objects.filter(subscription=failing, attempts__gt=0).exists(),
             timeout=60)
    print(f"seeded in {time.monotonic() - started:.0f} s")
    return Seeded(tenant, account, broken, failing)


def sign_in(page, email: str = OWNER) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard")


def sign_in_admin(page) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Email").fill(OPERATOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")


def _kind(path: str) -> str:
    """Pages of one kind (the same route with another id) share this: the path's first four
    segments (``/dashboard/mailboxes/<id>/messages``: a mailbox's pages are each their own
    kind, its messages one)."""
    return "/".join(path.split("/")[:5])


def crawl(page, start: str = "/dashboard") -> list[str]:
    """The dashboard's pages (paths), found from ``start`` by following same-site links
    under /dashboard that answer HTML: breadth first, at most MAX_PAGES."""
    base = page.url
    seen, kinds, found, queue = {start}, {}, [], [start]
    while queue and len(found) < MAX_PAGES:
        path = queue.pop(0)
        response = page.goto(path)
        if response is None or not response.ok or \
                "text/html" not in response.headers.get("content-type", ""):
            continue
        found.append(path)
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
            url = urlsplit(urljoin(base, href))
            target = url.path + (f"?{url.query}" if url.query else "")
            if url.netloc != urlsplit(base).netloc or not url.path.startswith("/dashboard") \
                    or url.path in ("/dashboard/live.json", "/dashboard/stream") \
                    or target in seen:
                continue
            seen.add(target)
            kind = _kind(url.path)
            if kinds.get(kind, 0) >= MAX_PER_KIND:
                continue
            kinds[kind] = kinds.get(kind, 0) + 1
            queue.append(target)
    return found


def admin_pages(seeded: Seeded) -> list[str]:
    return ["/admin/", "/admin/accounts/tenant/", f"/admin/accounts/tenant/{seeded.tenant.pk}/change/",
            "/admin/webhooks/delivery/"]


def name_of(path: str) -> str:
    """A file name for a page's screenshot."""
    name = path.strip("/").replace("/", "-").replace("?", "-").replace("=", "-").replace("&", "-")
    return name or "home"


def overflow(page) -> dict:
    """How much wider than the viewport the page and its header are (0 when they fit)."""
    return page.evaluate("""() => {
        const width = window.innerWidth;
        const header = document.querySelector('.topbar');
        return {page: Math.max(0, document.documentElement.scrollWidth - width),
                header: header ? Math.max(0, header.getBoundingClientRect().right - width) : 0};
    }""")

