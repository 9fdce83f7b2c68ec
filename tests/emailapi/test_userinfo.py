"""``emailapi.lib.userinfo``: a URL's ``user:password@`` read, masked and written back. Pure."""

from __future__ import annotations

import pytest

from emailapi.lib import userinfo
from emailapi.lib.netguard import BadURL


@pytest.mark.parametrize("url, bare, user, password", [
    ("https://us%40er:p%40ss%3Aw%C3%B6rd@h:8/x?", "https://h:8/x?", "us@er", "p@ss:wörd"),
    ("https://user@h/#f", "https://h/#f", "user", None),
    ("https://u:p@a@h/", "https://h/", "u", "p@a"),  # the last "@" ends the userinfo
    ("https://h/p?q=a@b", "https://h/p?q=a@b", None, None),  # an "@" in the query is no userinfo
])
def test_split_takes_the_userinfo_out_and_decodes_it(url, bare, user, password):
    found_bare, found = userinfo.split(url)
    assert found_bare == bare
    assert (found.user if found else None) == user
    assert (found.password if found else None) == password


def test_masking_changes_the_password_only_and_keeps_every_other_character():
    url = "https://us%40er:p%40ss@Hook.example:8443/in/?#"
    assert userinfo.masked(url, "***") == "https://us%40er:***@Hook.example:8443/in/?#"
    assert userinfo.masked("https://user@h/", "***") == "https://user@h/"
    assert userinfo.masked("http://[::1/", "***") == "http://[::1/"  # does not parse: as it is


@pytest.mark.parametrize("password", ["p@ss:wörd/?#%", "******", "", " spaced "])
def test_a_password_written_in_reads_back_the_same(password):
    bare, found = userinfo.split(userinfo.with_password("https://us%40er:***@h/in?x=1", password))
    assert bare == "https://h/in?x=1"
    assert (found.user, found.password) == ("us@er", password)


def test_a_password_of_six_asterisks_written_in_is_not_the_mask():
    _, found = userinfo.split(userinfo.with_password("https://u:x@h/", "******"))
    assert found.written_password == "%2A%2A%2A%2A%2A%2A"


def test_basic_authorization_is_utf8_and_absent_for_an_empty_userinfo():
    assert userinfo.basic_authorization("us@er", "wörd") == {
        "Authorization": "Basic dXNAZXI6d8O2cmQ="}
    assert userinfo.basic_authorization("user", None) == {"Authorization": "Basic dXNlcjo="}
    assert userinfo.basic_authorization("", "") == {}


@pytest.mark.parametrize("url", ["https://u:%zz@h/", "https://u%3A:p@h/", "https://u:%C3@h/",
                                 "https://u:%1F@h/", "https://u:p\x7f@h/", 42])
def test_a_userinfo_basic_cannot_carry_is_bad(url):
    with pytest.raises(BadURL):
        userinfo.split(url)


@pytest.mark.parametrize("text, shown", [
    ("socks5://u:p/x@proxy:1080", "socks5://u:******@proxy:1080"),
    ("u:p@proxy:1080", "u:******@proxy:1080"),
    ("http:u:p@127.0.0.1:9/", "http:u:******@127.0.0.1:9/"),
    ("https://user:pw@host/path@x", "https://user:******@host/path@x"),
    ("https://user@host/", "https://user@host/"),
    ("https://host/path", "https://host/path"),
])
def test_loose_masking_masks_what_looks_like_a_password(text, shown):
    assert userinfo.masked_loosely(text, "******") == shown


def test_strict_masking_leaves_a_url_with_an_at_in_its_path_whole():
    assert userinfo.masked("http://host:8080/a@b", "******") == "http://host:8080/a@b"
