"""The compiled FETCH tokenizer (``mailboxes/imap/_tokens.pyx``) gives exactly what the Python
reference (``parse.python_parse_tokens``) gives, on answers a server sends and on random text
made of the characters IMAP's syntax turns on; ``make`` compiled it and ``parse`` itself, so
they are what runs; a compiled module older than its source is never loaded. Pure functions:
no server."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from mailboxes.imap import parse
from tests.python_runs import copy_tree, python_in

ROOT = Path(__file__).resolve().parents[2]

try:
    from mailboxes.imap import _tokens
except ImportError:  # not built: test_the_compiled_tokenizer_is_in_use says so
    _tokens = None

needs_native = pytest.mark.skipif(_tokens is None, reason="the compiled tokenizer is not built")

ANSWERS = [
    # An answer as Dovecot sends it, with a literal and header sections in brackets.
    (b'* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) INTERNALDATE "01-Jan-2024 00:00:00 +0000" '
     b'RFC822.SIZE 429 MODSEQ (21) ENVELOPE ("Mon, 01 Jan 2024 08:00:00 +0000" "Quarterly report" '
     b'(("Alice Example" NIL "alice" "example.test")) NIL NIL (("=?utf-8?q?J=C3=B6rg?=" NIL '
     b'"joerg" "example.test")("Li" NIL "li" "example.test")) NIL NIL NIL "<b-0@rig.test>") '
     b'BODYSTRUCTURE ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 76 5 NIL NIL NIL NIL) '
     b'BODY[HEADER.FIELDS (REFERENCES FROM SENDER REPLY-TO TO CC BCC)] {42}', [b"From: a@b\r\n"]),
    # Escapes in quoted strings, an empty string, NIL quoted and not, raw 8-bit bytes.
    (b'* 2 FETCH (ENVELOPE (NIL "say \\"hi\\" \\\\ there" "" "NIL" NIL "caf\xc3\xa9 \xff"))', []),
    # Literal markers of every kind; one with no literal left gives b"".
    (b"(a {3}\r\n b {4+}\r\n c ~{5}\r\n d {9})", [b"one", b"two!", b"three"]),
    # Sections: a partial, a MIME part, spaces and parens inside brackets.
    (b"(BODY[1.MIME]<0> BODY[HEADER.FIELDS (X-A X-B)]<0.100> BINARY.PEEK[2]<5> [ALERT] x[a][b]y)", []),
    # Broken text: unbalanced parens, an unterminated quote, stray braces and brackets.
    (b')) (a (b "c d', []),
    (b'x {y} z ~{ ~w [no end\r\n ] }', []),
    (b'"a\\', []),
    (b"NIL NILS XNIL nil (NIL)", []),
    (b"", []),
    (b"\t\x0b\x0c\r\n  ", []),
]

# The characters the grammar turns on, and a few that it does not.
ALPHABET = [b"(", b")", b'"', b"\\", b"{", b"}", b"[", b"]", b"~", b"+", b" ", b"\r", b"\n",
            b"\t", b"\x0b", b"\x0c", b"0", b"12", b"NIL", b"a", b"\xff", b"<", b".", b"*"]


def test_the_compiled_modules_are_in_use():
    """``make`` compiles ``_tokens`` and ``parse``; without them indexing parses about 1.6x
    slower (the Python code runs, with a warning at import)."""
    assert _tokens is not None, "mailboxes/imap/_tokens.pyx is not built: run `make install`"
    assert parse.parse_tokens is _tokens.parse_tokens
    assert Path(parse.__file__).name.endswith(tuple(EXTENSION_SUFFIXES)), \
        "mailboxes/imap/parse.py is not compiled: run `make install`"


@needs_native
@pytest.mark.parametrize("text,literals", ANSWERS)
def test_same_tokens_as_the_reference(text, literals):
    assert _tokens.parse_tokens(text, literals) == parse.python_parse_tokens(text, literals)


@needs_native
def test_what_the_tokens_are():
    """The model both follow, spelt out for one text (strings unquoted and unescaped, NIL as
    None, literals in order, sections kept in their atom)."""
    text = b'(a "b \\"c\\"" NIL "NIL" {3}\r\n BODY[1.MIME]<0> (x) ~{2} {7})'
    assert _tokens.parse_tokens(text, [b"xyz", b"ab"]) == [
        [b"a", b'b "c"', None, b"NIL", b"xyz", b"BODY[1.MIME]<0>", [b"x"], b"ab", b""]]


@needs_native
def test_same_tokens_on_random_text():
    rng = random.Random(20261205)
    for _ in range(30_000):
        text = b"".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
        literals = [b"L%d" % n for n in range(rng.randint(0, 3))]
        assert _tokens.parse_tokens(text, literals) == parse.python_parse_tokens(text, literals), text


@needs_native
def test_other_byte_types_are_read_as_bytes():
    text = b'(a "b" [c d] NIL)'
    expected = parse.python_parse_tokens(text)
    assert _tokens.parse_tokens(bytearray(text)) == expected
    assert _tokens.parse_tokens(memoryview(text)) == expected


def test_without_the_compiled_module_the_reference_is_used():
    code = ("import sys; sys.modules['mailboxes.imap._tokens'] = None\n"
            "from mailboxes.imap import parse\n"
            "assert parse.parse_tokens is parse.python_parse_tokens\n"
            "print(parse.parse_fetch(b'* 1 FETCH (UID 5 FLAGS (\\\\Seen))'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, {'UID': b'5', 'FLAGS': [b'\\\\Seen']})"


@needs_native
@pytest.mark.parametrize("edited", ["parse.py", "_tokens.pyx"])
def test_a_compiled_module_older_than_its_source_is_not_loaded(tmp_path, edited):
    """The IMAP package copied with its compiled modules, one source then edited: the Python
    code runs (with a warning), and parses the same."""
    copy_tree(tmp_path, "mailboxes/imap", "emailapi/lib/native.py", "emailapi/lib/storable.py")
    package = tmp_path / "mailboxes" / "imap"
    code = ("import warnings; warnings.simplefilter('always')\n"
            "from mailboxes.imap import parse\n"
            "print(parse.__file__.rsplit('/', 1)[1], parse.parse_tokens.__name__)\n"
            "print(parse.parse_fetch(b'* 1 FETCH (UID 5 FLAGS (\\\\Seen))'))")
    fresh = python_in(tmp_path, code)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.split()[0] != "parse.py"
    assert "changed since it was compiled" not in fresh.stderr
    later = max(path.stat().st_mtime for path in package.iterdir()) + 10
    os.utime(package / edited, (later, later))
    stale = python_in(tmp_path, code)
    assert stale.returncode == 0, stale.stderr
    assert f"mailboxes/imap/{edited} changed since it was compiled" in stale.stderr
    module, tokenizer = stale.stdout.split("\n")[0].split()
    if edited == "parse.py":
        assert (module, tokenizer) == ("parse.py", "parse_tokens")  # source; compiled tokens
    else:
        assert module != "parse.py"
        assert tokenizer == "python_parse_tokens"
    assert stale.stdout.split("\n")[1] == fresh.stdout.split("\n")[1] == \
        "(1, {'UID': b'5', 'FLAGS': [b'\\\\Seen']})"
