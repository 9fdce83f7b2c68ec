"""The API's short-cut content negotiation chooses what DRF's own would, for every Accept."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from emailapi.api.negotiation import PlainJSONNegotiation
from emailapi.api.renderers import FastJSONRenderer

ACCEPTS = [None, "", "*/*", "application/json", "application/json; indent=4",
           "application/*", "text/html", "text/html, application/json;q=0.9", "image/png"]


def _choice(negotiation, accept, query="", suffix=None):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/v1/accounts{query}", **headers))
    try:
        renderer, media_type = negotiation.select_renderer(request, [FastJSONRenderer()], suffix)
    except NotAcceptable as exc:
        return "406", str(exc.detail)
    except Exception as exc:  # noqa: BLE001 - whatever DRF raises, both must raise it
        return type(exc).__name__, str(exc)
    return type(renderer), media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query,suffix", [("", None), ("?format=json", None),
                                          ("?format=xml", None), ("", "json")])
def test_it_chooses_what_drfs_negotiation_chooses(accept, query, suffix):
    ours = _choice(PlainJSONNegotiation(), accept, query, suffix)
    assert ours == _choice(DefaultContentNegotiation(), accept, query, suffix)


def test_the_plain_case_needs_no_parsing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("DRF's negotiation was used")

    monkeypatch.setattr(DefaultContentNegotiation, "select_renderer", refuse)
    for accept in (None, "*/*", "application/json"):
        assert _choice(PlainJSONNegotiation(), accept) == (FastJSONRenderer, "application/json")
