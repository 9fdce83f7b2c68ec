"""The API's JSON parser: a body no view could use safely is refused whole, with a 400.

JSON allows what the rest of the system cannot hold: NUL in a string (PostgreSQL text refuses
it), a lone UTF-16 surrogate (``"\\ud800"``: not a character, so encoding it, for an IMAP
command, a mail header or even the error message that names it, fails), and nesting as deep as
the body is long (``[[[[...`` 100,000 levels; measured before decoding, see
``emailapi.lib.jsondepth``). Each view would otherwise meet them as a 500 somewhere deep
inside. Checked here once, every view receives only strings that are text and structures of a
sane depth.
"""

from __future__ import annotations

import re

from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

from emailapi.lib import jsondepth
from emailapi.lib.logsafe import escape_controls

MAX_DEPTH = 32  # levels of objects and arrays; search criteria (8 levels of or/not) need 18
_UNUSABLE = re.compile("[\x00\ud800-\udfff]")


def _name(path: list[str]) -> str:
    text = "".join(path).lstrip(".") or "body"
    return escape_controls(text).encode("utf-8", "backslashreplace").decode()


def _problem(text: str) -> str:
    return ("NUL characters are not allowed" if "\x00" in text
            else "Not valid text: contains a lone UTF-16 surrogate")


def check(data) -> None:
    """Raise ``ValidationError`` (naming the field) unless every string of ``data``, keys
    included, is usable text. Iterative, though the parser already refused deep nesting."""
    stack = [(data, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _UNUSABLE.search(value):
                raise serializers.ValidationError({_name(path): [_problem(value)]})
        elif isinstance(value, (dict, list)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                step = [*path, f".{key}" if isinstance(value, dict) else f"[{key}]"]
                if isinstance(key, str) and _UNUSABLE.search(key):
                    raise serializers.ValidationError({_name(step): [_problem(key)]})
                stack.append((item, step))


class JSONParser(parsers.JSONParser):
    """DRF's parser, with the depth measured before decoding and the strings checked after."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        constant = strict_constant if self.strict else None
        try:
            data = jsondepth.loads(stream.read().decode(encoding), MAX_DEPTH,
                                   parse_constant=constant)
        except jsondepth.TooDeep as exc:
            raise ParseError(str(exc)) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        check(data)
        return data
