"""The public ends of a tracked message's links (``mailboxes.tracking``), outside the
token-protected /v1, as EmailEngine serves them:

* ``GET /open.gif?data=..&sig=..``: a 1x1 transparent GIF (``Cache-Control: no-store``: each
  opening fetches it again) and one ``trackOpen``;
* ``GET /redirect?data=..&sig=..``: 302 to the link's own URL (http or https, never anything
  else) and one ``trackClick``.

A link we did not sign (or one of the other kind) is 403 in the API's error shape, and
records nothing. ``HEAD`` answers the same without recording: it is a link checker's, not a
reader's. The reader's address is ``REMOTE_ADDR`` (what ``emailapi.proxies`` made of a
trusted proxy's ``X-Forwarded-For``), as on the unsubscribe page.

The event is recorded once the answer is served, in the response's ``close()``: Django's ASGI
handler calls it after the last byte is sent (the test client before it returns). Recording
first asks whether the fetch is a scanner's (``mailboxes.automated_fetches``), which may wait
on a reverse DNS lookup; no reader waits for it. The fetch's time is taken as the request comes
in (the event's ``date``). A database outage at that moment keeps the fetch in Redis, to be
recorded once the database is back (``mailboxes.tracking_events``); any other failure to record
is logged: the reader has the image or the redirect already.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable

from django.http import HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_http_methods

from accounts.errors import LinkInvalid
from emailapi.api.errors import json_error_response
from emailapi.proxies import client_address
from mailboxes import tracking, tracking_events

# The smallest transparent GIF: 1x1, one transparent colour.
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0"

logger = logging.getLogger(__name__)


class _RecordedWhenServed:
    """A response that runs ``record`` (once) when it is closed, that is once it is served,
    before Django's ``request_finished`` hands the request's database connection back."""

    record: Callable[[], object] | None = None

    def close(self):
        record, self.record = self.record, None
        if record is not None:
            try:
                record()
            except Exception:
                logger.exception("A tracking event could not be recorded")
        super().close()


class _TrackingImage(_RecordedWhenServed, HttpResponse):
    pass


class _TrackingRedirect(_RecordedWhenServed, HttpResponseRedirect):
    pass


def _followed(request, kind: str):
    """The link's payload and what records its fetch (None for ``HEAD``); or the 403 answer."""
    try:
        link = tracking.read(kind, request.GET.get("data"), request.GET.get("sig"))
    except LinkInvalid as exc:
        return None, None, json_error_response(exc.message, exc.code, 403)
    if request.method != "GET":
        return link, None, None
    fetch = tracking_events.Fetch(kind, link, client_address(request),
                                  request.headers.get("User-Agent", ""))
    return link, lambda: tracking_events.record(fetch), None


@require_http_methods(["GET", "HEAD"])
def open_gif(request):
    _link, record, refused = _followed(request, tracking.OPEN)
    if refused is not None:
        return refused
    response = _TrackingImage(GIF, content_type="image/gif", headers={
        "Cache-Control": NO_STORE, "Pragma": "no-cache",
        "Content-Disposition": 'inline; filename="open.gif"'})
    response.record = record
    return response


@require_http_methods(["GET", "HEAD"])
def redirect(request):
    link, record, refused = _followed(request, tracking.CLICK)
    if refused is not None:
        return refused
    response = _TrackingRedirect(link["url"])  # 302; http(s) only (tracking.read)
    response["Cache-Control"] = NO_STORE
    response.record = record
    return response
