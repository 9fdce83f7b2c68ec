"""What ``webSafeHtml`` costs, in one run: ``web_html.sanitize`` as the service runs it (HTML
over ``IN_THREAD_LIMIT`` characters in a helper process under the deadline: the request sent
through a pipe, the answer read back) against the same sanitizing in the calling thread
(``html_clean.sanitize``, as it ran before the helpers), and against the bare nh3 call without
the nesting bound (``html_nesting.flatten``). Cases: a newsletter-like message (nested
tables, inline styles, links; ``--blocks`` copies of one block), HTML nested N deep
(``<div>`` inside ``<div>``, where nh3 alone grows with the square of the depth), and shapes
the nesting bound does not count, which only the helper's deadline stops. Best of
``--rounds`` per case (the machine is shared); a case of the bare call that would run for
minutes is left out (``--floor-limit``, in nested divs), and so are the in-thread runs of the
hostile shapes (seconds each; ``--hostile-in-thread`` runs them once).

    .venv/bin/python bench/html_sanitize.py [--blocks 400] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailboxes import html_clean, web_html  # noqa: E402

BLOCK = ('<table width="600" cellpadding="0" style="border-collapse:collapse"><tr>'
         '<td style="padding:8px;font-family:Arial"><div><span style="color:#333">News '
         '<b>item</b></span><br><a href="https://example.test/x">Read more</a>'
         '<img src="https://example.test/i.png" width="40"></div></td></tr></table>\n')


# Shapes the nesting bound counts as shallow while the parser nests (or copies) them as deep as
# they are long: seconds each in the thread (found by fuzzing, bench/fuzz_sanitize.py).
HOSTILE = ("<dd>x<li>", "</tr><s>x</i><i><b>x", "</a></li><a>x</u><code>x<font>x")


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
    parser.add_argument("--hostile-in-thread", action="store_true")
    args = parser.parse_args()

    def bare(html: str) -> str:
        html_clean.flatten = str  # the same nh3 call, on the HTML as it came
        try:
            return html_clean.sanitize(html)
        finally:
            html_clean.flatten = flatten

    flatten = html_clean.flatten
    web_html.sanitize("<p>" * (web_html.IN_THREAD_LIMIT + 1))  # start a helper first
    cases = [(f"newsletter, {args.blocks} blocks", BLOCK * args.blocks, True, True)]
    for levels in (1_000, 10_000, 40_000, 200_000):
        cases.append((f"<div> nested {levels:,} deep", "<div>" * levels + "x" + "</div>" * levels,
                      True, levels <= args.floor_limit))
    for unit in HOSTILE:
        cases.append((f"{unit} x 200 KB", unit * (200_000 // len(unit)), args.hostile_in_thread,
                      False))
    print(f"{'case':36s} {'bytes':>10s} {'sanitize':>10s} {'in thread':>10s} {'ratio':>6s} "
          f"{'bare nh3':>10s}")
    for name, html, in_thread, with_floor in cases:
        rounds = args.rounds if len(html) < 100_000 else 2
        ours = best(web_html.sanitize, html, rounds if in_thread else 1)
        before = best(html_clean.sanitize, html, rounds) if in_thread else None
        floor = best(bare, html, 1) if with_floor else None
        ratio = f"{ours / before:6.2f}" if before else "     -"
        print(f"{name:36s} {len(html):10,d} {_ms(ours)} {_ms(before)} {ratio} {_ms(floor)}",
              flush=True)


def _ms(seconds: float | None) -> str:
    return f"{seconds * 1000:8.1f}ms" if seconds is not None else "         -"


if __name__ == "__main__":
    main()
