"""Fuzzes ``web_html.sanitize`` with random shapes repeated to ``--size`` characters: units of 2-6
start tags, end tags and text of elements the HTML parser treats specially (formatting, lists,
tables, foreign content, scoping elements), each unit under a seed. Prints every shape that took
longer than ``--report`` seconds and, at the end, the slowest one: with the helper processes'
deadline (``EMAILAPI_HTML_SANITIZE_SECONDS``, 2 s) nothing should take much more than the
deadline. ``--in-thread`` fuzzes the sanitizing in the calling thread instead
(``html_clean.sanitize``: how the shapes the nesting bound misses were found).

    .venv/bin/python bench/fuzz_sanitize.py [--seeds 1 2 3] [--units 20] [--size 200000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailboxes import html_clean, web_html  # noqa: E402

TAGS = ("b", "i", "a", "font", "nobr", "u", "s", "span", "q", "div", "p", "li", "table", "td",
        "tr", "select", "option", "svg", "math", "ruby", "rt", "button", "h1", "form", "ul",
        "dd", "template", "object", "marquee", "x", "em", "code")
FORMS = ("<{}>", "</{}>", "<{}>x")


def unit(rng: random.Random) -> str:
    """One random shape: 2-6 tags, start or end, some followed by text."""
    return "".join(rng.choice(FORMS).format(rng.choice(TAGS)) for _ in range(rng.randint(2, 6)))


def shapes(seed: int, count: int, size: int):
    """``count`` shapes of the seed, each repeated to about ``size`` characters."""
    rng = random.Random(seed)
    for _ in range(count):
        piece = unit(rng)
        yield piece, piece * (size // len(piece))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--units", type=int, default=20)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--report", type=float, default=0.5)
    parser.add_argument("--in-thread", action="store_true")
    args = parser.parse_args()
    sanitize = html_clean.sanitize if args.in_thread else web_html.sanitize
    slowest = (0.0, "")
    for seed in args.seeds:
        for piece, html in shapes(seed, args.units, args.size):
            started = time.monotonic()
            sanitize(html)
            took = time.monotonic() - started
            slowest = max(slowest, (took, piece))
            if took > args.report:
                print(f"seed {seed}: {took:6.2f} s {piece!r}", flush=True)
    print(f"{len(args.seeds) * args.units} shapes of {args.size:,} characters; slowest "
          f"{slowest[0]:.2f} s: {slowest[1]!r}")


if __name__ == "__main__":
    main()
