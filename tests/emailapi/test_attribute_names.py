"""``emailapi.lib.attribute_names``: names taught to a class before its instances exist stay in
the table its instances share, however many instances came first (CPython 3.11 stops adding
names to it once a few dozen instances exist; an instance setting a name it lacks gets a dict
of its own, several times larger)."""

from __future__ import annotations

import sys

from emailapi.lib.attribute_names import learn


def _late_names_set_on(cls: type) -> object:
    """Forty instances made first (as a worker opens sixteen connections at once), then
    names set on each: the size of one instance's attributes."""
    many = [cls() for _ in range(40)]
    for obj in many:
        obj.early = obj.late = obj.later = 1
    return sys.getsizeof(vars(many[-1]))


def test_names_learned_first_keep_instances_in_the_shared_table():
    class Untaught:
        pass

    class Taught:
        pass

    learn(Taught, ["early", "late", "later"])
    untaught, taught = _late_names_set_on(Untaught), _late_names_set_on(Taught)
    assert untaught > 2 * taught  # a dict of its own against a share of the table


def test_learning_runs_no_init_and_leaves_no_instance_behind():
    made = []

    class Counted:
        def __init__(self):
            made.append(self)

    learn(Counted, ["a"])
    assert made == []
