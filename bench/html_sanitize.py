"""What ``webSafeHtml`` costs (``mailboxes.web_html.sanitize``: ``html_nesting.flatten``, then
nh3) against its floor in the same run, the same nh3 call without ``flatten`` (the sanitizer
as it was before): a newsletter-like message
(nested tables, inline styles, links; ``--blocks`` copies of one block) and HTML nested N deep
(``<div>`` inside ``<div>``), where nh3 alone grows with the square of the depth. Best of
``--rounds`` per case (the machine is shared); a case of the floor that would run for minutes
is left out (``--floor-limit``, in nested divs).

    .venv/bin/python bench/html_sanitize.py [--blocks 400] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailboxes import web_html  # noqa: E402

BLOCK = ('<table width="600" cellpadding="0" style="border-collapse:collapse"><tr>'
         '<td style="padding:8px;font-family:Arial"><div><span style="color:#333">News '
         '<b>item</b></span><br><a href="https://example.test/x">Read more</a>'
         '<img src="https://example.test/i.png" width="40"></div></td></tr></table>\n')


def best(function, html: str, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function(html)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--floor-limit", type=int, default=40_000)
    args = parser.parse_args()
    def floor(html: str) -> str:
        web_html.flatten = str  # the same nh3 call, on the HTML as it came
        try:
            return web_html.sanitize(html)
        finally:
            web_html.flatten = flatten

    flatten = web_html.flatten
    cases = [(f"newsletter, {args.blocks} blocks", BLOCK * args.blocks, True)]
    for levels in (1_000, 10_000, 40_000, 200_000):
        cases.append((f"<div> nested {levels:,} deep", "<div>" * levels + "x" + "</div>" * levels,
                      levels <= args.floor_limit))
    print(f"{'case':32s} {'bytes':>10s} {'sanitize':>10s} {'unflattened':>12s} {'ratio':>6s}")
    for name, html, with_floor in cases:
        ours = best(web_html.sanitize, html, args.rounds)
        rounds = args.rounds if len(html) < 100_000 else 1
        theirs = best(floor, html, rounds) if with_floor else None
        shown = f"{theirs * 1000:10.1f}ms" if theirs is not None else "  (left out)"
        ratio = f"{ours / theirs:6.2f}" if theirs else "     -"
        print(f"{name:32s} {len(html):10,d} {ours * 1000:8.1f}ms {shown} {ratio}", flush=True)


if __name__ == "__main__":
    main()
