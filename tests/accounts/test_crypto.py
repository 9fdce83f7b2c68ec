"""Sealing secrets: authenticated, bound to their context, useless without the key."""

import pytest

from accounts import crypto

SECRET = "operator-secret-0123456789"


def test_it_round_trips():
    sealed = crypto.seal("p@ss wörd", "tenant:1/account:2/imap.pass", SECRET)
    assert "p@ss" not in sealed
    assert crypto.open_secret(sealed, "tenant:1/account:2/imap.pass", [SECRET]) == "p@ss wörd"


def test_each_seal_differs():
    assert crypto.seal("x", "c", SECRET) != crypto.seal("x", "c", SECRET)


def test_it_refuses_another_context():
    sealed = crypto.seal("secret", "tenant:1/account:2/imap.pass", SECRET)
    with pytest.raises(crypto.DecryptionError):
        crypto.open_secret(sealed, "tenant:9/account:2/imap.pass", [SECRET])


def test_it_refuses_a_tampered_value():
    sealed = crypto.seal("secret", "c", SECRET)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(crypto.DecryptionError):
        crypto.open_secret(flipped, "c", [SECRET])


def test_it_needs_the_right_key_but_accepts_an_old_one():
    sealed = crypto.seal("secret", "c", SECRET)
    with pytest.raises(crypto.DecryptionError):
        crypto.open_secret(sealed, "c", ["another-secret-0123456789"])
    assert crypto.open_secret(sealed, "c", ["new-secret-0123456789", SECRET]) == "secret"
