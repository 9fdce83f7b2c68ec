"""The choice of the local address an SMTP connection goes out from
(``mailboxes.local_address``)."""

from __future__ import annotations

import logging

from mailboxes import local_address
from mailboxes.local_address import Route, choose, rendezvous

LISTED = ["127.0.0.2", "127.0.0.3"]
NOT_LISTED = "127.0.0.9"
ABSENT = "192.0.2.1"  # TEST-NET-1: no machine of ours has it, so it cannot be bound


# --- the pure choice --------------------------------------------------------------------------


def test_a_listed_hint_is_used():
    assert choose("127.0.0.3", LISTED, "1:box") == Route("127.0.0.3", "127.0.0.3", "hint")


def test_a_hint_is_compared_as_an_address_not_as_text():
    chosen = choose("2001:DB8:0::25", ["2001:db8::10", "2001:db8::25"], "1:box")

    assert (chosen.address, chosen.selector) == ("2001:db8::25", "hint")


def test_one_listed_address_is_used_with_or_without_a_hint():
    assert choose(None, ["127.0.0.2"], "1:box") == Route("127.0.0.2", None, "single")
    assert choose(NOT_LISTED, ["127.0.0.2"], "1:box") == Route("127.0.0.2", NOT_LISTED, "single")


def test_without_listed_addresses_nothing_is_bound():
    assert choose(None, [], "1:box") == Route(None, None, "default")
    assert choose(NOT_LISTED, [], "1:box") == Route(None, NOT_LISTED, "default")


def test_of_several_each_account_keeps_its_own():
    chosen = [choose(None, LISTED, f"1:account-{n}") for n in range(200)]

    assert {route.selector for route in chosen} == {"dedicated"}
    assert {route.address for route in chosen} == set(LISTED), "spread over both"
    again = [choose(NOT_LISTED, list(reversed(LISTED)), f"1:account-{n}").address
             for n in range(200)]
    assert again == [route.address for route in chosen], "stable whatever the order or hint"


def test_removing_an_address_moves_only_the_accounts_that_had_it():
    three = [*LISTED, "127.0.0.4"]
    before = {n: rendezvous(f"1:account-{n}", three) for n in range(300)}
    after = {n: rendezvous(f"1:account-{n}", LISTED) for n in range(300)}

    moved = {n for n in before if before[n] != after[n]}
    assert moved == {n for n in before if before[n] == "127.0.0.4"}
    assert moved, "some accounts had the removed address"


def test_the_same_account_id_of_two_tenants_is_not_bound_to_share_an_address():
    addresses = [f"127.0.0.{n}" for n in range(2, 12)]

    picks = {rendezvous(f"{tenant}:box", addresses) for tenant in range(1, 50)}
    assert len(picks) > 1


def test_network_routing_says_what_was_bound_and_what_was_asked():
    assert Route(None).network_routing() is None
    assert Route("127.0.0.2", None, "single", "mx.example").network_routing() == {
        "localAddress": "127.0.0.2", "name": "mx.example"}
    assert Route("127.0.0.2", "127.0.0.2", "hint", "mx.example").network_routing() == {
        "localAddress": "127.0.0.2", "name": "mx.example"}
    assert Route("127.0.0.2", NOT_LISTED, "single", "mx.example").network_routing() == {
        "localAddress": "127.0.0.2", "name": "mx.example", "requestedLocalAddress": NOT_LISTED}
    assert Route(None, NOT_LISTED, "default", "mx.example").network_routing() == {
        "name": "mx.example", "requestedLocalAddress": NOT_LISTED}


def test_listed_addresses_the_machine_lacks_are_skipped_with_one_warning(caplog, monkeypatch):
    monkeypatch.setattr(local_address, "_missing_warned", set())  # another test's warnings
    with caplog.at_level(logging.WARNING, logger="mailboxes.local_address"):
        for _ in range(2):
            assert local_address.usable([ABSENT, "127.0.0.2", "127.0.0.3x"]) == ["127.0.0.2"]

    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 2, warned
    assert f"{ABSENT} is skipped: this machine does not have it" in warned[0]
    assert "127.0.0.3x is skipped: it is not an IP address" in warned[1]
