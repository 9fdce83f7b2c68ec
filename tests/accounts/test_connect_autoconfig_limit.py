"""``/connect/autoconfig`` (the hosted password form's server suggestions) needs only a valid
link, and a domain outside the built-in table costs a DNS lookup holding a web thread for up to
5 s: a link allows ``links.LOOKUPS_PER_MINUTE`` of those a minute, then 429 with
Retry-After. Known domains cost nothing and are not counted. Real Redis; the MX lookup is the
page's own hook (no query leaves the machine)."""

from __future__ import annotations

import pytest

from accounts.oauth2 import links, pages

pytestmark = pytest.mark.django_db


def test_a_link_allows_a_bounded_number_of_dns_lookups_a_minute(client, alice, monkeypatch):
    data, sig = links.make({"tenant": alice.tenant.pk, "type": "imap", "nonce": "lookups-1",
                            "redirectUrl": "https://app.example/back"})
    looked_up = []
    monkeypatch.setattr(pages, "autoconfig_mx_lookup",
                        lambda domain: looked_up.append(domain) or [])
    url = f"/connect/autoconfig?data={data}&sig={sig}&email="

    answers = [client.get(f"{url}me@d{n}.example") for n in range(links.LOOKUPS_PER_MINUTE + 1)]

    assert [a.status_code for a in answers[:-1]] == [200] * links.LOOKUPS_PER_MINUTE
    assert answers[-1].status_code == 429
    assert answers[-1].json()["code"] == "RateLimited"
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    assert len(looked_up) == links.LOOKUPS_PER_MINUTE
    known = client.get(f"{url}me@fastmail.com")  # the built-in table: no lookup
    assert known.status_code == 200
    assert known.json()["imap"]["host"] == "imap.fastmail.com"


def test_another_links_lookups_are_its_own(client, alice, monkeypatch):
    monkeypatch.setattr(pages, "autoconfig_mx_lookup", lambda domain: [])
    for nonce in ("lookups-2", "lookups-3"):
        data, sig = links.make({"tenant": alice.tenant.pk, "type": "imap", "nonce": nonce,
                                "redirectUrl": "https://app.example/back"})
        url = f"/connect/autoconfig?data={data}&sig={sig}&email=me@corp.example"
        assert all(client.get(url).status_code == 200
                   for _ in range(links.LOOKUPS_PER_MINUTE))
