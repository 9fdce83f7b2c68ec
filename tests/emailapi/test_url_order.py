"""The /v1 includes are tried in the order that is fastest for the hot routes
(``emailapi/urls.py``); that order must decide nothing: no path of one app's routes may be
matched by another app's pattern."""

from __future__ import annotations

import itertools
import re
import sys
import types

from django.urls import URLResolver, include, path
from django.urls.resolvers import RegexPattern

APPS = ("mailboxes.api.urls", "accounts.api.urls", "webhooks.api.urls")


def _samples() -> list[str]:
    """A path for every route, its parameters filled with each literal segment any route
    has (so a parameter standing where another route has a word is tried with that word)."""
    import importlib

    patterns = [str(p.pattern) for app in APPS
                for p in importlib.import_module(app).urlpatterns]
    words = {segment for pattern in patterns for segment in pattern.split("/")
             if segment and "<" not in segment} | {"x"}
    samples = []
    for pattern in patterns:
        slots = len(re.findall(r"<[^>]+>", pattern))
        for fill in itertools.product(sorted(words), repeat=min(slots, 2)):
            values = [*fill, *["x"] * slots]
            parts = re.split(r"<[^>]+>", pattern)
            samples.append("/v1/" + "".join(
                part + (values[i] if i < len(parts) - 1 else "") for i, part in enumerate(parts)))
    return samples


def _resolved(order: tuple[str, ...], samples: list[str]) -> dict[str, str]:
    module = types.ModuleType("urls_in_order")
    module.urlpatterns = [path("v1/", include([path("", include(app)) for app in order]))]
    sys.modules.pop(module.__name__, None)
    resolver = URLResolver(RegexPattern(r"^/"), module)
    out = {}
    for sample in samples:
        try:
            out[sample] = resolver.resolve(sample).view_name
        except Exception:  # noqa: BLE001 - a 404 is an answer too
            out[sample] = "404"
    return out


def test_it_resolves_every_route_alike_in_any_order_of_the_includes():
    samples = _samples()
    first = _resolved(APPS, samples)
    assert sum(name != "404" for name in first.values()) > len(samples) // 4
    for order in itertools.permutations(APPS):
        assert _resolved(order, samples) == first, order
