"""Teach a class the names its instances' attributes take, before its instances are made.

CPython 3.11 keeps the attributes of a class's instances in one key table shared by all of
them, so each instance holds only its values (a few hundred bytes), while the names fit: at most
30 per class, and fewer the more instances exist. Each new instance takes one slot of room away
(down to one), so a class with thousands of instances stops learning names after its first few
dozen. An instance that sets a name the table lacks gets a dict of its own: 1.6 KB rather than
0.3 for an imaplib connection.

Instances made one at a time each set all their names before the next is made. A worker opens
sixteen connections at once, and the names a connection sets late (its greeting, its
capabilities) came after the room was gone: every connection a worker held had its own dict.
``learn`` makes one throwaway instance (``__init__`` is not run) and sets each name once, in
order, so the table holds them all before the first real instance exists.
"""

from __future__ import annotations

from collections.abc import Iterable


def learn(cls: type, names: Iterable[str]) -> None:
    """Put ``names`` into ``cls``'s shared table of instance attribute names."""
    probe = cls.__new__(cls)
    for name in names:
        object.__setattr__(probe, name, None)
