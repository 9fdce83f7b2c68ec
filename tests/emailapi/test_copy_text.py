"""COPY rows written in one pass (``emailapi/lib/_copy_text.pyx``) are the bytes psycopg's own
formatting sends for the same values (with JSON columns as the index writer's ``_json_text``
writes them): for rows the index writer builds from messages with every awkward character in
their headers, and for random rows of every kind of value; a value psycopg must adapt (another
type, a NUL, a lone surrogate) leaves the row to psycopg. A row written this way reads back as
it went in. ``make`` built the module, so it is what runs."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, models
from psycopg._copy_base import TextFormatter
from psycopg.adapt import Transformer

from emailapi.lib import copy_text
from mailboxes.imap.types import Address, MessageMeta, Part
from mailboxes.models import Message
from mailboxes.sync import index
from tests.mailboxes.helpers import synced_inbox
from tests.python_runs import copy_tree, python_in

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

needs_native = pytest.mark.skipif(not copy_text.compiled, reason="_copy_text is not built")

FIELDS = [f for f in Message._meta.concrete_fields if not f.primary_key]
NAMES = tuple(f.attname for f in FIELDS)
JSON = tuple(isinstance(f, models.JSONField) for f in FIELDS)
# Every control character, COPY's and JSON's escapes, quotes, non-ASCII of 2, 3 and 4 bytes.
AWKWARD = [chr(c) for c in range(1, 32)] + ["\\", '"', "'", "/", "\x7f", "é", "€", "😀", "a", " "]


def _psycopg(values: list) -> bytes:
    """What ``Copy.write_row`` sends for *values* (on this test's own connection)."""
    with connection.cursor() as cursor:
        formatter = TextFormatter(Transformer(cursor.cursor))
        formatter.write_row(values)
        return bytes(formatter.end())


def _reference(row: dict) -> bytes:
    return _psycopg([index._json_text(row[name]) if json else row[name]
                     for name, json in zip(NAMES, JSON, strict=True)])


def _text(rng: random.Random, most: int = 12) -> str:
    return "".join(rng.choice(AWKWARD) for _ in range(rng.randint(0, most)))


def _meta(rng: random.Random, uid: int) -> MessageMeta:
    def addresses() -> list[Address]:
        return [Address(_text(rng), f"{_text(rng, 4)}@x.test") for _ in range(rng.randint(0, 3))]
    parts = [Part(part=f"{n}", content_type=rng.choice(["text/plain", "image/png"]),
                  size=rng.randint(0, 10 ** 12), filename=rng.choice([None, _text(rng)]),
                  content_id=rng.choice([None, _text(rng)]), charset=rng.choice([None, "utf-8"]),
                  embedded=rng.random() < 0.5, method=rng.choice([None, "REQUEST"]))
             for n in range(rng.randint(0, 3))]
    zone = timezone(timedelta(minutes=rng.randint(-900, 900)))
    return MessageMeta(
        uid=uid, flags=tuple(rng.choice(["\\Seen", "$Label", _text(rng)])
                             for _ in range(rng.randint(0, 3))),
        internal_date=rng.choice([None, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)]),
        size=rng.randint(0, 2 ** 40), modseq=rng.choice([None, rng.randint(1, 2 ** 62)]),
        subject=_text(rng, 40), from_=addresses(), sender=addresses(), reply_to=addresses(),
        to=addresses(), cc=addresses(), bcc=addresses(),
        date=rng.choice([None, datetime(1999, 12, 31, 23, 59, 59, rng.randint(0, 999999),
                                        tzinfo=zone)]),
        message_id=rng.choice([None, f"<{_text(rng)}@x>"]), in_reply_to=rng.choice([None, "<p@x>"]),
        references=[f"<{_text(rng, 5)}@x>" for _ in range(rng.randint(0, 4))],
        has_attachments=bool(parts), attachments=parts, text_parts=parts[:1],
        labels=tuple(_text(rng) for _ in range(rng.randint(0, 2))))


def test_the_compiled_rows_are_in_use():
    """``make`` builds ``_copy_text``; without it every indexed row is adapted by psycopg
    value by value (slower, the same bytes)."""
    assert copy_text.compiled, "emailapi/lib/_copy_text.pyx is not built: run `make install`"


@needs_native
def test_rows_of_awkward_messages_are_the_bytes_psycopg_sends(alice, mail_user):
    folder = synced_inbox(alice.tenant, mail_user)
    rng = random.Random(41)
    now = datetime(2026, 12, 5, 8, 0, 0, 123456, tzinfo=UTC)
    for uid in range(1, 1501):
        row = index._row_values(folder, _meta(rng, uid), {}, now)
        assert copy_text.row(row, NAMES, JSON) == _reference(row), row


def _json_value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 2 or roll < 0.4:
        return rng.choice([None, True, False, 0, -1, 2 ** 63, -(2 ** 63), _text(rng), ""])
    if roll < 0.7:
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.8:
        return tuple(_json_value(rng, depth + 1) for _ in range(rng.randint(0, 2)))
    return {_text(rng, 4): _json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _plain_value(rng: random.Random):
    zone = rng.choice([UTC, None, timezone(timedelta(hours=5, minutes=30)),
                       timezone(timedelta(seconds=-3601)), timezone(-timedelta(hours=23, minutes=59)),
                       timezone(timedelta(seconds=rng.randint(-86399, 86399),
                                          microseconds=rng.choice([0, 1, 999999])))])
    return rng.choice([None, True, False, 0, -7, 2 ** 63 - 1, -(2 ** 63), 2 ** 63, -(2 ** 70),
                       rng.randint(-10 ** 12, 10 ** 12), _text(rng, 30),
                       datetime(rng.randint(1, 9999), rng.randint(1, 12), rng.randint(1, 28),
                                rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                                rng.choice([0, 5, 999999, rng.randint(0, 999999)]), tzinfo=zone),
                       datetime(1, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 12)])


@needs_native
def test_random_rows_are_the_bytes_psycopg_sends():
    rng = random.Random(43)
    json = (False, True, False, True, False)
    names = tuple(f"c{n}" for n in range(len(json)))
    for _ in range(20_000):
        row = {name: _json_value(rng) if flag else _plain_value(rng)
               for name, flag in zip(names, json, strict=True)}
        expected = _psycopg([index._json_text(row[name]) if flag else row[name]
                             for name, flag in zip(names, json, strict=True)])
        assert copy_text.row(row, names, json) == expected, row


@needs_native
@pytest.mark.parametrize("value,json", [
    ("a\x00b", False), (["a\x00b"], True), ({"name": "\x00"}, True), ("\ud800", False),
    (["\ud800"], True),
    ({1: "a"}, True), (1.5, False), ([1.5], True), (Decimal("1"), False), (b"x", False),
    (datetime(2024, 1, 1).date(), False), ({"a": {"b": object()}}, True),
])
def test_what_psycopg_must_adapt_is_left_to_it(value, json):
    assert copy_text.row({"v": value}, ("v",), (json,)) is None


@needs_native
def test_a_row_written_in_one_pass_reads_back_as_it_went_in(alice, mail_user):
    folder = synced_inbox(alice.tenant, mail_user)
    subject = "tab\there \\ back\nline \"quoted\" é € 😀 \x01"
    name = "O'Brien, \"Pat\" \\ \t"
    meta = MessageMeta(uid=5, subject=subject, from_=[Address(name, "p@x.test")],
                       references=["<a\\b@x>"], flags=("\\Seen", "$Tab\t"))
    row = index._row_values(folder, meta, {}, datetime.now(UTC))
    assert copy_text.row(row, NAMES, JSON) is not None
    index.add_messages(folder, [meta], notify=False)
    stored = Message.objects.get(folder=folder, uid=5)
    assert (stored.subject, stored.from_address, stored.references, stored.flags) == \
        (subject, {"name": name, "address": "p@x.test"}, ["<a\\b@x>"], ["\\Seen", "$Tab\t"])


@needs_native
@pytest.mark.parametrize("edited", ["_copy_text.pyx", "_copy_text.pxd"])
def test_a_compiled_module_older_than_its_source_is_not_used(tmp_path, edited):
    """``copy_text`` copied with its compiled module, ``_copy_text.pyx`` (or the ``.pxd`` its
    inline writers are in) then edited: rows are left to psycopg (with a warning) instead of
    running code that is no longer there."""
    copy_tree(tmp_path, "emailapi/lib/native.py",
              *(f"emailapi/lib/{path.name}" for path in (ROOT / "emailapi" / "lib").glob("*copy_text*")
                if path.suffix != ".c"))
    lib = tmp_path / "emailapi" / "lib"
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from emailapi.lib import copy_text\n"
            "print(copy_text.compiled, copy_text.row({'a': 'x'}, ('a',), (False,)))")
    fresh = python_in(tmp_path, code)
    assert (fresh.returncode, fresh.stdout.strip()) == (0, "True b'x\\n'"), fresh.stderr
    later = max(path.stat().st_mtime for path in lib.iterdir()) + 10
    os.utime(lib / edited, (later, later))
    stale = python_in(tmp_path, code)
    assert (stale.returncode, stale.stdout.strip()) == (0, "False None"), stale.stderr
    assert "emailapi/lib/_copy_text.pyx or .pxd changed since it was compiled" in stale.stderr
