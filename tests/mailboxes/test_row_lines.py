"""History rows' COPY lines written straight from the parsed message
(``mailboxes/sync/_row_lines.pyx``) are the bytes of the reference, ``copy_text.row`` of
``index._row_values``: for random messages with every awkward character in their headers and
parts, and for the rows a first index writes from real Dovecot answers; a row the reference
would leave to psycopg (a NUL, a lone surrogate, a value of another type) is declined and the
reference writes it. History indexed this way reads back as the reference's rows. ``make``
built the module, so it is what runs."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emailapi.lib import copy_text
from mailboxes.imap.types import Address, MessageMeta, Part
from mailboxes.models import Folder, Message
from mailboxes.sync import index, row_lines
from tests.base import ON_SQLITE
from tests.emailapi.test_copy_text import JSON, NAMES, _meta
from tests.mailboxes.helpers import synced_inbox
from tests.python_runs import copy_tree, python_in

pytestmark = [pytest.mark.django_db,
              pytest.mark.skipif(ON_SQLITE, reason="COPY lines are PostgreSQL's")]
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 5, 8, 0, 0, 123456, tzinfo=UTC)
CODES = row_lines.plan(NAMES)


class _Folder:
    email_account_id = 12
    pk = 34


def _reference(meta: MessageMeta, thread_of: dict | None = None) -> bytes | None:
    return copy_text.row(index._row_values(_Folder, meta, thread_of or {}, NOW), NAMES, JSON)


def _line(meta: MessageMeta, thread_of: dict | None = None) -> bytes | None:
    email_id, thread_id = index._ids(meta, thread_of or {})
    return row_lines.line(CODES, meta, _Folder.email_account_id, _Folder.pk, email_id,
                          thread_id, NOW)


def test_the_compiled_row_lines_are_in_use():
    """``make`` builds ``_row_lines``; without it every history row is built as values in
    Python (slower, the same rows)."""
    assert row_lines.compiled, "mailboxes/sync/_row_lines.pyx is not built: run `make install`"
    assert CODES is not None
    assert index._line_codes() == CODES


def test_lines_of_random_messages_are_the_references_bytes():
    rng = random.Random(47)
    written = 0
    for uid in range(1, 3001):
        meta = _meta(rng, uid)
        expected = _reference(meta)
        assert _line(meta) == expected, meta
        written += expected is not None
    assert written > 2000  # most rows go the compiled way, not both declined


def test_lines_cut_long_values_where_the_reference_does():
    """The row keeps at most 998 characters of Message-ID and In-Reply-To and 4,000 of each
    search text: random messages never reach those limits, so the C writer's copies of them
    are held to the reference here."""
    crowd = [Address(f"Person {n} ÄÖÜ", f"person{n}@example.test") for n in range(200)]
    meta = MessageMeta(uid=4, message_id="<" + "m" * 1200 + "@x>",
                       in_reply_to="<" + "é" * 1200 + "@x>", from_=crowd[:150], sender=crowd,
                       to=crowd, cc=crowd[:100], bcc=crowd)
    line = _line(meta)
    assert line == _reference(meta)
    assert line.count(b"m" * 997) == 1, "the Message-ID column is cut, not dropped"
    assert b"m" * 998 not in line


def test_lines_carry_the_ids_they_are_given():
    meta = MessageMeta(uid=3, message_id="<c@x>", in_reply_to="<p@x>", references=["<r@x>"])
    known = {"<p@x>": "tKNOWN"}
    assert _line(meta, known) == _reference(meta, known)
    assert b"\ttKNOWN\t" in _line(meta, known)


@pytest.mark.parametrize("change", [
    {"subject": "a\x00b"}, {"subject": "\ud800"}, {"to": [Address("a\x00b", "a@x")]},
    {"to": (Address("a", "a@x"),)},
    {"to": [Address("\ud800", "a@x")]}, {"attachments": [Part("2", "image/png", 1.5)]},
    {"references": ["<a@x>", 7.5]}, {"size": 1.5}, {"flags": frozenset({"\\Seen"})},
])
def test_a_row_of_unusual_values_is_declined_and_left_to_the_reference(change):
    """Values the reference leaves to psycopg (a NUL, a lone surrogate, a float), and
    containers of another type than the parser makes (which the reference copies into
    lists): the compiled writer writes none of them."""
    meta = MessageMeta(uid=9, **{"subject": "s", "to": [Address("A", "a@x")],
                                 "attachments": [Part("2", "image/png", 10)], **change})
    assert _line(meta) is None


def test_a_plan_needs_every_column_and_no_other():
    assert row_lines.plan(NAMES + ("extra",)) is None
    assert row_lines.plan(NAMES[:-1]) is None
    assert row_lines.plan(tuple(reversed(NAMES))) == tuple(reversed(CODES))


def _columns(folder: Folder) -> list[dict]:
    skip = {"id", "folder", "indexed_at"}
    fields = [f.attname for f in Message._meta.concrete_fields if f.name not in skip]
    return list(Message.objects.filter(folder=folder).order_by("uid").values(*fields))


def test_history_written_as_lines_reads_back_as_the_references_rows(alice, mail_user,
                                                                    monkeypatch):
    """The same messages indexed as silent history into two folders of one account, one the
    compiled way and one through the values (the writer's plan taken away): every column
    but the row's own id, folder and time reads back the same, threads across batches too."""
    compiled = synced_inbox(alice.tenant, mail_user)
    reference = Folder.objects.create(email_account=compiled.email_account, path="Other",
                                      name="Other", number=2)
    rng = random.Random(53)
    metas = [_meta(rng, uid) for uid in range(1, 201)]
    for meta in metas:  # replies to the first batch, answered in the second
        meta.message_id = f"<m{meta.uid}@x>"
        meta.in_reply_to = f"<m{meta.uid - 100}@x>" if meta.uid > 100 else None
    lines_before = _count_lines(monkeypatch)
    for batch in (metas[:100], metas[100:]):
        index.add_messages(compiled, batch, notify=False)
    assert lines_before["lines"] > 100  # most went the compiled way
    monkeypatch.setattr(index, "_line_codes", lambda: None)
    for batch in (metas[:100], metas[100:]):
        index.add_messages(reference, batch, notify=False)
    assert _columns(compiled) == _columns(reference)
    replies = Message.objects.filter(folder=compiled, uid__gt=100)
    assert all(reply.thread_id == Message.objects.get(folder=compiled, uid=reply.uid - 100)
               .thread_id for reply in replies)


def _count_lines(monkeypatch) -> dict:
    counts = {"lines": 0}
    real = row_lines.line

    def counting(*args):
        line = real(*args)
        counts["lines"] += line is not None
        return line
    monkeypatch.setattr(row_lines, "line", counting)
    return counts


def test_new_mail_is_written_through_the_values(alice, mail_user, monkeypatch):
    """``messageNew`` is made from the row's values: new mail never takes the compiled way."""
    folder = synced_inbox(alice.tenant, mail_user)
    counts = _count_lines(monkeypatch)
    rows = index.add_messages(folder, [MessageMeta(uid=1, subject="new")], notify=True)
    assert ([row.subject for row in rows], counts["lines"]) == (["new"], 0)


@pytest.mark.parametrize("edited", ["mailboxes/sync/_row_lines.pyx",
                                    "emailapi/lib/_copy_text.pxd"])
def test_a_compiled_module_older_than_its_source_is_not_used(tmp_path, edited):
    """``row_lines`` copied with its compiled module and ``copy_text``'s, then
    ``_row_lines.pyx`` edited, or the ``.pxd`` whose inline writers it was compiled with (and
    only ``_copy_text`` built again since, so that ``copy_text`` itself is in use): no plan
    (with a warning), so every row goes through the values."""
    copy_tree(tmp_path, "emailapi/lib/native.py", "mailboxes/sync/row_lines.py",
              *(f"emailapi/lib/{path.name}" for path in (ROOT / "emailapi" / "lib").glob("*copy_text*")
                if path.suffix != ".c"),
              *(f"mailboxes/sync/{path.name}" for path in (ROOT / "mailboxes" / "sync").glob("_row_lines*")
                if path.suffix != ".c"))
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from mailboxes.sync import row_lines\n"
            "print(row_lines.compiled, row_lines.plan(('uid',)))")
    fresh = python_in(tmp_path, code)
    assert (fresh.returncode, fresh.stdout.strip()) == (0, "True None"), fresh.stderr
    lib, source = tmp_path / "emailapi" / "lib", tmp_path / edited
    later = max(path.stat().st_mtime for folder in (lib, source.parent)
                for path in folder.iterdir()) + 10
    os.utime(source, (later, later))
    for rebuilt in lib.glob("_copy_text.*.so"):
        os.utime(rebuilt, (later + 10, later + 10))
    stale = python_in(tmp_path, code)
    assert (stale.returncode, stale.stdout.strip()) == (0, "False None"), stale.stderr
    assert ("mailboxes/sync/_row_lines.pyx or emailapi/lib/_copy_text.pxd changed since it "
            "was compiled") in stale.stderr


def test_lines_of_real_answers_are_the_references_bytes(mail_user):
    """Issue 17's corpus of 120 varied messages and the seed's awkward ones, appended to
    Dovecot and fetched as a first index fetches them."""
    from mailboxes.imap import fetch
    from tests.mailboxes import mime_shapes
    from tests.mailboxes.test_imap_fetch import open_client
    from tests.servers import seed

    seed.seed_mailbox(mail_user, messages=mime_shapes.corpus(120) + seed.build_messages())
    client = open_client(mail_user)
    try:
        metas = fetch.fetch_meta(client, "1:*")
    finally:
        client.logout()
    assert len(metas) >= 120
    thread_of: dict[str, str] = {}
    for meta in metas:
        assert _line(meta, thread_of) == _reference(meta, thread_of), meta
        assert _line(meta, thread_of) is not None, meta
