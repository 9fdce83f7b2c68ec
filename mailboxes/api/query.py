"""``search[from]=x&search[or][0][seen]=false`` query strings to the JSON search object (pure).

GET search takes its criteria in the query string, in the bracket form EmailEngine's users
send. Values arrive as strings; criteria whose JSON type is boolean or integer are converted
(only exact ``true``/``false`` and digits; anything else stays a string for the serializer to
refuse with a clear error).
"""

from __future__ import annotations

import re

BOOLEAN = {"seen", "unseen", "flagged", "answered", "draft", "deleted", "hasAttachments"}
INTEGER = {"larger", "smaller", "modseq"}
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class BadQuery(ValueError):
    pass


def nested(params, root: str) -> dict:
    """The object under ``root[...]`` keys of a QueryDict (or plain dict of strings).

    Every key that starts with ``root[`` must be well formed (``root[a]``, ``root[a][0][b]``):
    one that is not (``root[[[``, ``root[a``, ``root[a]x``) is a ``BadQuery``, never skipped,
    since a criterion silently dropped widens the search."""
    out: dict = {}
    for key in params:
        if not key.startswith(f"{root}["):
            continue
        match = _KEY.match(key)
        path = re.findall(r"\[([^\[\]]*)\]", match.group(2)) if match else []
        if not path or any(part == "" for part in path):
            raise BadQuery(f"Malformed parameter {key!r}: write {root}[name] or "
                           f"{root}[or][0][name]")
        value = params.get(key) if hasattr(params, "getlist") else params[key]
        _put(out, path, _typed(path[-1], value), key)
    return _lists(out)


def _put(node: dict, path: list[str], value, key: str) -> None:
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise BadQuery(f"Conflicting parameter {key!r}")
        node = child
    if isinstance(node.get(path[-1]), dict):
        raise BadQuery(f"Conflicting parameter {key!r}")
    node[path[-1]] = value


def _lists(node):
    """Objects whose keys are exactly 0..n-1 become lists (``or`` groups)."""
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        indexes = sorted(int(key) for key in converted)
        if indexes == list(range(len(indexes))):
            return [converted[str(i)] for i in indexes]
    return converted


def _typed(name: str, value: str):
    if name in BOOLEAN and value in ("true", "false"):
        return value == "true"
    if name in INTEGER and value.isdigit():
        return int(value)
    return value
