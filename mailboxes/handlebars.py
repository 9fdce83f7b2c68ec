"""The Handlebars that EmailEngine's stored templates and ``render`` use, for their subject,
text and HTML: enough of the language to render what such templates hold, in pure Python.

    {{params.name}}  {{this}}  {{.}}  {{../x}}  {{@root.params.x}}  {{@index}} {{@key}}
    {{{raw}}}  {{& raw}}                      not escaped
    {{#if x}} ... {{else}} ... {{/if}}        also {{#unless}}, {{else if y}}
    {{#each list}} ... {{else}} ... {{/each}}  @index, @key, @first, @last; objects too
    {{#with x}} ... {{else}} ... {{/with}}
    {{insert params.name "default=Customer"}} EmailEngine's helper: the value or the default
    {{! comment }}  {{!-- comment --}}  {{~ trims whitespace ~}}  \\{{ literal

Values show as JavaScript shows them (``true``, ``1.5``, ``a,b`` for a list, nothing for null),
escaped as Handlebars escapes them (``& < > " ' ` =``); truthiness is JavaScript's, with an
empty list false as Handlebars has it. Anything else (partials, other helpers, subexpressions)
is a ``TemplateError`` naming where, raised when the template is parsed: a template that
renders wrong silently would send wrong mail. Rendering is bounded (``MAX_OUTPUT``,
``MAX_STEPS``, nesting depth) so that a template looping over large lists, or loops in loops
that write nothing, cannot take the process's memory or time.
No Django here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

MAX_OUTPUT = 10 * 1024 * 1024  # characters a render may produce
MAX_STEPS = 200_000  # pieces a render may go through: loops in loops that write nothing
MAX_DEPTH = 64  # nested blocks
BLOCK_HELPERS = ("if", "unless", "each", "with")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;",
            "=": "&#x3D;"}
_ESCAPE_RE = re.compile(r"[&<>\"'`=]")
_TAG_RE = re.compile(r"(\\*)\{\{(~?)(\{?)")
_ARG_RE = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^\s"']+))""")
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
_SEGMENT_RE = re.compile(r"^(?:\.\.|\.|this|@?[A-Za-z0-9_$\-]+|\[[^\]]*\])$")


class TemplateError(ValueError):
    """The template cannot be rendered here; the message says where and why."""


@dataclass
class _Text:
    text: str


@dataclass
class _Value:
    path: tuple | Any  # a parsed path, or a literal
    args: list
    escape: bool
    helper: str | None = None


@dataclass
class _Block:
    helper: str
    args: list
    body: list = field(default_factory=list)
    inverse: list | None = None
    line: int = 0
    chained: bool = False  # an {{else if}}: closed by its first block's {{/if}}


@dataclass(frozen=True)
class _Path:
    up: int  # how many ``../``
    parts: tuple[str, ...]  # after ``this``; ``@name`` as its first for data
    root: bool = False


# -- parsing -----------------------------------------------------------------------------------

def parse(source: str) -> list:
    """``source`` as a tree; ``TemplateError`` for what is not supported or not well formed."""
    tokens = _tokens(source)
    stack: list[tuple[_Block | None, list]] = [(None, [])]
    for kind, body, line in tokens:
        block, items = stack[-1]
        if kind == "text":
            if body:
                items.append(_Text(body))
        elif kind == "open":
            name, args = _call(body, line)
            if name not in BLOCK_HELPERS:
                raise TemplateError(f"Line {line}: the block helper #{name} is not supported "
                                    f"here (only {', '.join(BLOCK_HELPERS)})")
            if len(stack) > MAX_DEPTH:
                raise TemplateError(f"Line {line}: blocks nested deeper than {MAX_DEPTH}")
            if len(args) != 1:
                raise TemplateError(f"Line {line}: #{name} takes one value")
            new = _Block(name, args, line=line)
            items.append(new)
            stack.append((new, new.body))
        elif kind == "else":
            if block is None or block.inverse is not None:
                raise TemplateError(f"Line {line}: {{{{else}}}} outside a block")
            block.inverse = []
            if body:  # {{else if x}}: a nested block that ends with this one
                name, args = _call(body, line)
                if name not in ("if", "unless"):
                    raise TemplateError(f"Line {line}: {{{{else {name}}}}} is not supported")
                if len(args) != 1:
                    raise TemplateError(f"Line {line}: {{{{else {name}}}}} takes one value")
                chained = _Block(name, args, line=line, chained=True)
                block.inverse.append(chained)
                stack[-1] = (block, block.inverse)
                stack.append((chained, chained.body))
            else:
                stack[-1] = (block, block.inverse)
        elif kind == "close":
            name = body.strip()
            while block is not None and block.chained:
                stack.pop()
                block, items = stack[-1]
            if block is None or block.helper != name:
                expected = f"{{{{/{block.helper}}}}}" if block else "no block to close"
                raise TemplateError(f"Line {line}: {{{{/{name}}}}} where {expected} was expected")
            stack.pop()
        else:  # a value
            escape = kind == "value"
            name, args = _call(body, line)
            if name == "insert":
                items.append(_Value(None, args, escape, helper="insert"))
            elif args:
                raise TemplateError(f"Line {line}: the helper {name!r} is not supported here "
                                    "(only insert)")
            else:
                items.append(_Value(_argument(name, line), [], escape))
    if len(stack) > 1:
        block = stack[-1][0]
        while block is not None and block.chained:
            stack.pop()
            block = stack[-1][0]
        if block is not None:
            raise TemplateError(f"Line {block.line}: {{{{#{block.helper}}}}} is never closed")
    return stack[0][1]


def _tokens(source: str) -> list[tuple[str, str, int]]:
    """(kind, body, line) in order: text, open, close, else, value, raw."""
    out: list[list] = []
    position = 0
    while True:
        found = _TAG_RE.search(source, position)
        if not found:
            out.append(["text", source[position:], 0])
            break
        backslashes, trim_before, triple = found.groups()
        line = source.count("\n", 0, found.start()) + 1
        if len(backslashes) % 2:  # \{{ is literal
            out.append(["text", source[position:found.start()] + "\\" * (len(backslashes) // 2)
                        + "{{", line])
            position = found.start() + len(backslashes) + 2
            continue
        out.append(["text", source[position:found.start()] + "\\" * (len(backslashes) // 2),
                    line])
        start = found.end()
        if source.startswith("!--", start):
            found_end = re.compile(r"--~?\}\}").search(source, start + 3)
            end = found_end.start() + found_end.group().count("~") if found_end else -1
            close_len = 4
        else:
            closer = "}}}" if triple else "}}"
            end = source.find(closer, start)
            close_len = len(closer)
        if end < 0:
            raise TemplateError(f"Line {line}: {{{{ is never closed")
        inner = source[start:end]
        trim_after = inner.endswith("~")
        if trim_after:
            inner = inner[:-1]
        if trim_before and out and out[-1][0] == "text":
            out[-1][1] = out[-1][1].rstrip()
        position = end + close_len
        if trim_after:
            rest = source[position:]
            position += len(rest) - len(rest.lstrip())
        kind, body = _classify(inner, bool(triple), line)
        if kind != "comment":
            out.append([kind, body, line])
    return [tuple(item) for item in out]


def _classify(inner: str, triple: bool, line: int) -> tuple[str, str]:
    if triple:
        return "raw", inner
    stripped = inner.strip()
    if stripped.startswith("!"):
        return "comment", ""
    if stripped.startswith("#"):
        if stripped.startswith(("#>", "#*")):
            raise TemplateError(f"Line {line}: partial blocks and decorators are not supported")
        return "open", stripped[1:]
    if stripped.startswith("/"):
        return "close", stripped[1:]
    if stripped == "else" or stripped == "^":
        return "else", ""
    if stripped.startswith("else "):
        return "else", stripped[5:]
    if stripped.startswith("&"):
        return "raw", stripped[1:]
    if stripped.startswith((">", "^", "*")):
        raise TemplateError(f"Line {line}: partials, inverse sections and decorators are not "
                            "supported")
    return "value", stripped


def _call(body: str, line: int) -> tuple[str, list]:
    """A tag's helper (or path) and its arguments, each parsed."""
    if "(" in body or "=" in re.sub(r"\"[^\"]*\"|'[^']*'", "", body):
        raise TemplateError(f"Line {line}: subexpressions and hash arguments are not supported")
    words = []
    position = 0
    while position < len(body):
        found = _ARG_RE.match(body, position)
        if not found or found.end() == position:
            break
        words.append(found)
        position = found.end()
    if body[position:].strip() or not words:
        raise TemplateError(f"Line {line}: cannot read {{{{{body}}}}}")
    first = words[0]
    if first.group(3) is None:
        raise TemplateError(f"Line {line}: a tag cannot start with a string")
    return first.group(3), [_argument_of(word, line) for word in words[1:]]


def _argument_of(found: re.Match, line: int):
    if found.group(1) is not None or found.group(2) is not None:
        text = found.group(1) if found.group(1) is not None else found.group(2)
        return re.sub(r"\\(.)", r"\1", text)
    return _argument(found.group(3), line)


def _argument(word: str, line: int):
    """A literal (number, true, false, null, undefined) or a path."""
    if _NUMBER_RE.match(word):
        return float(word) if "." in word else int(word)
    if word in ("true", "false"):
        return word == "true"
    if word in ("null", "undefined"):
        return None
    return _path(word, line)


def _path(word: str, line: int) -> _Path:
    root = False
    if word.startswith("@root"):
        root, word = True, word[5:].lstrip("./") or "this"
    up = 0
    while word.startswith("../"):
        up, word = up + 1, word[3:]
    if word in ("this", "."):
        return _Path(up, (), root)
    if word.startswith("this."):
        word = word[5:]
    elif word.startswith("./"):
        word = word[2:]
    parts = word.replace("/", ".").split(".")
    if not all(_SEGMENT_RE.match(part) for part in parts) or any(
            part in (".", "..", "this") for part in parts):
        raise TemplateError(f"Line {line}: {word!r} is not a path Handlebars reads")
    return _Path(up, tuple(part[1:-1] if part.startswith("[") else part for part in parts),
                 root)


# -- rendering ---------------------------------------------------------------------------------

@dataclass
class _Frame:
    value: Any
    data: dict


def render(tree: list, context: dict) -> str:
    out: list[str] = []
    _render(tree, [_Frame(context, {})], out, [0, 0])
    return "".join(out)


def render_text(source: str, context: dict) -> str:
    return render(parse(source), context)


def _render(items: list, stack: list[_Frame], out: list[str], size: list[int]) -> None:
    """``size``: [characters written, pieces gone through], both bounded."""
    for item in items:
        size[1] += 1
        if size[1] > MAX_STEPS:
            raise TemplateError(f"The template takes more than {MAX_STEPS} steps to render")
        if isinstance(item, _Text):
            _emit(item.text, out, size)
        elif isinstance(item, _Value):
            if item.helper == "insert":
                value = _insert(item.args, stack)
            else:
                value = _resolve(item.path, stack)
            text = show(value)
            _emit(escape(text) if item.escape else text, out, size)
        else:
            _block(item, stack, out, size)


def _emit(text: str, out: list[str], size: list[int]) -> None:
    size[0] += len(text)
    if size[0] > MAX_OUTPUT:
        raise TemplateError(f"The rendered text is longer than {MAX_OUTPUT} characters")
    out.append(text)


def _insert(args: list, stack: list[_Frame]):
    if not args:
        raise TemplateError("insert needs a value")
    value = _resolve(args[0], stack)
    if truthy(value):
        return value
    for arg in args[1:]:
        if isinstance(arg, str) and arg.startswith("default="):
            return arg[len("default="):]
    return value


def _block(block: _Block, stack: list[_Frame], out: list[str], size: list[int]) -> None:
    value = _resolve(block.args[0], stack)
    inverse = block.inverse or []
    if block.helper in ("if", "unless"):
        chosen = block.body if truthy(value) == (block.helper == "if") else inverse
        _render(chosen, stack, out, size)
    elif block.helper == "with":
        if truthy(value):
            _render(block.body, [*stack, _Frame(value, stack[-1].data)], out, size)
        else:
            _render(inverse, stack, out, size)
    else:  # each
        if isinstance(value, dict):
            entries = list(value.items())
        elif isinstance(value, list):
            entries = list(enumerate(value))
        else:
            entries = []
        if not entries:
            _render(inverse, stack, out, size)
            return
        last = len(entries) - 1
        for index, (key, item) in enumerate(entries):
            data = {**stack[-1].data, "index": index, "first": index == 0, "last": index == last}
            if isinstance(value, dict):
                data["key"] = key
            _render(block.body, [*stack, _Frame(item, data)], out, size)


def _resolve(path, stack: list[_Frame]):
    if not isinstance(path, _Path):
        return path  # a literal
    if path.root:
        frame = stack[0]
    else:
        frame = stack[max(0, len(stack) - 1 - path.up)]
    parts = path.parts
    if parts and parts[0].startswith("@"):
        value = frame.data.get(parts[0][1:])
        parts = parts[1:]
    else:
        value = frame.value
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, (list, str)) and part == "length":
            value = len(value)
        else:
            return None
    return value


def truthy(value) -> bool:
    """JavaScript's truthiness, an empty list false (Handlebars's ``if``)."""
    if isinstance(value, float) and math.isnan(value):
        return False
    if isinstance(value, list):
        return bool(value)
    if isinstance(value, dict):
        return True
    return bool(value) if value is not None else False


def show(value) -> str:
    """A value as JavaScript's ``String()`` writes it (Handlebars shows null as nothing)."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, list):
        return ",".join(show(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def escape(text: str) -> str:
    return _ESCAPE_RE.sub(lambda found: _ESCAPES[found.group()], text)
