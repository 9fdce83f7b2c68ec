"""Which fetches of a tracked message's image and links are a scanner's
(``mailboxes.automated_fetches``), EmailEngine's rules: Google's crawler networks, IPv4 and
IPv6; a first reverse name ending in barracuda.com or spfbl.net after a word boundary; a
lookup that fails means "not automated". And the bounded, remembered reverse lookup."""

from __future__ import annotations

import threading
import time

import pytest

from mailboxes.automated_fetches import GOOGLE_CRAWLER_NETWORKS, ReverseNames, is_automated
from tests.base import wait_for


def _no_name(address: str) -> None:
    return None


def _never_asked(address: str) -> str:
    raise AssertionError(f"{address} was looked up")


def _named(name: str):
    return lambda address: name


@pytest.mark.parametrize("address", [
    "66.249.87.5", "66.249.87.0", "66.249.87.255",  # a whole /24 of /27s, both ends
    "192.178.17.31", "74.125.219.63", "209.85.238.200",
    "2001:4860:4801:2008::1", "2001:4860:4801:2093:ffff:ffff:ffff:ffff",
    "::ffff:72.14.199.9",  # a dual-stack listener's IPv4 peer
])
def test_googles_crawler_addresses_are_automated_without_a_lookup(address):
    assert is_automated(address, _never_asked)


@pytest.mark.parametrize("address", [
    "66.249.88.1", "66.249.90.64", "66.249.92.230",  # gaps in Google's list
    "192.178.17.32", "74.125.150.96", "74.125.219.64", "8.8.8.8", "127.0.0.1",
    "2001:4860:4801:2000::1", "2001:4860:4801:201f::1", "2001:4860:4801:2094::1", "::1",
    "::ffff:8.8.8.8",
])
def test_other_addresses_are_not_without_a_scanners_name(address):
    assert not is_automated(address, _no_name)


@pytest.mark.parametrize("name", [
    "barracuda.com", "scan-3.ess.barracuda.com", "SCAN.Barracuda.COM", "x-barracuda.com",
    "mx1.spfbl.net", "spfbl.net", "scan.barracuda.com.", " scan.barracuda.com ",
])
def test_hosts_named_as_barracudas_or_spfbls_are_automated(name):
    assert is_automated("192.0.2.10", _named(name))
    assert is_automated("2001:db8::10", _named(name))


@pytest.mark.parametrize("name", [
    "notbarracuda.com", "barracuda.com.example.net", "barracuda.net", "spfbl.net.example",
    "myspfbl.net", "barracuda-com.example", "localhost", "",
])
def test_other_names_are_not(name):
    assert not is_automated("192.0.2.10", _named(name))


def test_the_lookup_is_of_the_address_as_ipv4_when_mapped():
    asked = []
    is_automated("::ffff:192.0.2.10", lambda address: asked.append(address))
    assert asked == ["192.0.2.10"]


@pytest.mark.parametrize("address", ["", "unknown", "scan.barracuda.com", "66.249.87.5:443"])
def test_what_is_not_an_address_is_not_automated_nor_looked_up(address):
    assert not is_automated(address, _never_asked)


def test_the_crawler_networks_are_emailengines_list():
    assert len(GOOGLE_CRAWLER_NETWORKS) == 210
    assert sum(network.version == 6 for network in GOOGLE_CRAWLER_NETWORKS) == 105


def _refused(address: str) -> str:
    raise OSError(1, "Unknown host")


def test_a_failed_lookup_is_no_name_and_not_automated(caplog):
    names = ReverseNames(_refused, timeout=5)
    assert names("192.0.2.20") is None
    assert not is_automated("192.0.2.20", names)
    assert caplog.records == []  # an address without a name is no error to log


class _Held:
    """A resolver that answers only once released."""

    def __init__(self, name: str):
        self.name, self.asked, self.released = name, [], threading.Event()

    def __call__(self, address: str) -> str:
        self.asked.append(address)
        assert self.released.wait(30)
        return self.name


def test_a_lookup_that_does_not_answer_in_time_is_no_name_and_its_answer_counts_later():
    held = _Held("scan.barracuda.com")
    names = ReverseNames(held, timeout=0.05)
    try:
        started = time.monotonic()
        assert not is_automated("192.0.2.30", names)  # the reader's event is recorded
        assert time.monotonic() - started < 5
    finally:
        held.released.set()
    wait_for(lambda: names("192.0.2.30") == "scan.barracuda.com", timeout=10)
    assert is_automated("192.0.2.30", names)
    assert held.asked == ["192.0.2.30"]  # one lookup, however often it was waited for


def test_an_answer_is_kept_for_its_time_then_looked_up_again():
    now, asked = [0.0], []
    names = ReverseNames(lambda address: asked.append(address) or "reader.example.net",
                         timeout=5, ttl=60, clock=lambda: now[0])
    assert names("192.0.2.40") == "reader.example.net"
    now[0] = 59.0
    assert names("192.0.2.40") == "reader.example.net"
    assert asked == ["192.0.2.40"]
    now[0] = 60.0
    assert names("192.0.2.40") == "reader.example.net"
    assert asked == ["192.0.2.40", "192.0.2.40"]


def test_only_so_many_addresses_are_kept():
    asked = []
    names = ReverseNames(lambda address: asked.append(address) or "x.example", timeout=5, size=2)
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1"):
        names(address)
    assert asked == ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1"]  # .1 went first


def test_with_every_lookup_thread_busy_an_address_is_not_waited_for():
    held = _Held("scan.barracuda.com")
    names = ReverseNames(held, timeout=30, threads=1)
    first = threading.Thread(target=names, args=("192.0.2.50",))
    first.start()
    try:
        wait_for(lambda: held.asked, timeout=10)  # its lookup holds the one thread
        started = time.monotonic()
        assert names("192.0.2.51") is None
        assert time.monotonic() - started < 10  # not the 30 s its lookup would be waited for
        assert held.asked == ["192.0.2.50"]
    finally:
        held.released.set()
        first.join()
    # Not remembered as nameless: looked up once a thread is free.
    wait_for(lambda: names("192.0.2.51") == "scan.barracuda.com", timeout=10)
