"""Content negotiation that answers the common case without parsing: the API renders JSON
alone, and a request with no ``Accept``, ``*/*`` or ``application/json`` (and no ``?format=``)
gets exactly what DRF's negotiation would choose for it (the renderer and its media type).
DRF's parses the header into media-type objects on every request, a tenth of a listing's
framework time; anything else (``; indent=4``, ``text/html``, a format suffix) still goes
through DRF's, with its 406 for what cannot be served."""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation

_PLAIN = frozenset({None, "*/*", "application/json"})


class PlainJSONNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if (len(renderers) == 1 and format_suffix is None
                and request.META.get("HTTP_ACCEPT") in _PLAIN
                and self.settings.URL_FORMAT_OVERRIDE not in request.query_params):
            renderer = renderers[0]
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)
