"""The SMTP gateway page (``/dashboard/gateways``) through Django's test client: it manages the
same gateways as ``/v1/gateway`` under the API's rules, the password goes in but never comes
out of the page, viewers only look, and another tenant's gateway is a 404."""

from __future__ import annotations

import pytest

from mailboxes import gateways
from mailboxes.models import SmtpGateway
from tests.dashboard.test_oauth2_pages import sign_in

pytestmark = pytest.mark.django_db

PASSWORD = "gateway-Dash-Secret-5521"
FORM = {"gateway": "relay", "name": "Relay", "host": "smtp.example.com", "port": "587",
        "user": "relay-user", "password": PASSWORD, "tls_verify": "on"}


def test_it_adds_a_gateway_the_api_shows_and_never_shows_the_password(client, alice):
    sign_in(client, alice.tenant, "owner")
    assert client.get("/dashboard/gateways").status_code == 200
    added = client.post("/dashboard/gateways", FORM)
    assert added.status_code == 302, added.content.decode()[:500]
    gateway = gateways.find(alice.tenant, "relay")
    assert (gateway.host, gateway.port, gateway.user) == ("smtp.example.com", 587, "relay-user")
    assert gateways.password_of(gateway) == PASSWORD
    assert gateway.tls == {"rejectUnauthorized": True}
    page = client.get("/dashboard/gateways").content.decode()
    assert "relay" in page
    assert PASSWORD not in page
    assert alice.client.get("/v1/gateway/relay").json()["pass"] == "******"


def test_bad_input_is_shown_on_the_form_and_saves_nothing(client, alice):
    sign_in(client, alice.tenant, "owner")
    refused = client.post("/dashboard/gateways", {**FORM, "host": "bad host\r\nQUIT",
                                                  "gateway": ".."})
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "Not a valid host name" in html
    assert "Gateway id cannot be . or .." in html
    assert PASSWORD not in html
    assert not SmtpGateway.objects.exists()


def test_viewers_only_look_and_another_tenants_gateway_is_a_404(client, alice, bob):
    bob.client.post("/v1/gateway", {"gateway": "bobs", "name": "B", "host": "smtp.example.com",
                                    "port": 25}, format="json")
    sign_in(client, alice.tenant, "owner")
    assert client.post("/dashboard/gateways/bobs/delete").status_code == 404
    assert SmtpGateway.objects.filter(gateway_id="bobs").exists()
    client.post("/dashboard/gateways", FORM)
    viewer = client.__class__()
    sign_in(viewer, alice.tenant, "viewer", email="viewer@alice.test")
    page = viewer.get("/dashboard/gateways")
    assert page.status_code == 200
    assert "Add a gateway" not in page.content.decode()
    assert viewer.post("/dashboard/gateways/relay/delete").status_code == 403
    assert client.post("/dashboard/gateways/relay/delete").status_code == 302
    assert gateways.find(alice.tenant, "relay") is None
