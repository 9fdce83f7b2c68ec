"""The unsubscribe page a list message links to (``mailboxes.unsubscribe``), and the one-click
unsubscribe of RFC 8058.

``GET /unsubscribe?data=..&sig=..`` only shows the recipient where they stand, with a button
to unsubscribe (or to subscribe again): link scanners and previews fetch links, and a fetch
must change nothing. ``POST`` to the same URL with ``List-Unsubscribe=One-Click`` in the body
is a mail client's one-click unsubscribe (RFC 8058, the ``List-Unsubscribe-Post`` header);
the page's buttons post to ``/unsubscribe/address``. Only the link's signed parameters say
whom and which list: nothing a visitor types does. Neither POST carries a CSRF token: a mail
client's cannot, and the signed link is the whole authority either way.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.errors import LinkInvalid
from emailapi.proxies import client_address
from mailboxes import unsubscribe

ONE_CLICK = "One-Click"
TEMPLATE = "unsubscribe/page.html"


def _client(request) -> tuple[str, str]:
    return client_address(request), request.headers.get("User-Agent", "")


def _invalid(request, exc: LinkInvalid):
    return render(request, "unsubscribe/error.html", {"message": exc.message}, status=400)


def _page(request, link: dict, data: str, sig: str, changed: str = ""):
    return render(request, TEMPLATE, {
        "email": link["recipient"], "list_id": link["list"], "data": data, "sig": sig,
        "unsubscribed": unsubscribe.is_unsubscribed(link), "changed": changed})


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe_page(request):
    if request.method == "POST":
        return _one_click(request)
    data, sig = request.GET.get("data"), request.GET.get("sig")
    try:
        link = unsubscribe.read(data, sig)
    except LinkInvalid as exc:
        return _invalid(request, exc)
    return _page(request, link, data, sig)


def _one_click(request):
    """RFC 8058: the link's own URL, POSTed with ``List-Unsubscribe=One-Click``."""
    try:
        link = unsubscribe.read(request.GET.get("data"), request.GET.get("sig"))
    except LinkInvalid as exc:
        return JsonResponse({"error": exc.message, "code": exc.code}, status=400)
    if request.POST.get("List-Unsubscribe") != ONE_CLICK:
        return JsonResponse({"error": "A one-click unsubscribe posts List-Unsubscribe=One-Click",
                             "code": "InputValidationError"}, status=400)
    unsubscribe.unsubscribe(link, "one-click", *_client(request))
    return JsonResponse({"unsubscribed": True})


@csrf_exempt
@require_POST
def change_subscription(request):
    """The page's buttons: ``action`` unsubscribe or subscribe, with the link's data and sig."""
    data, sig = request.POST.get("data"), request.POST.get("sig")
    try:
        link = unsubscribe.read(data, sig)
    except LinkInvalid as exc:
        return _invalid(request, exc)
    action = request.POST.get("action")
    if action == "unsubscribe":
        unsubscribe.unsubscribe(link, "form", *_client(request))
    elif action == "subscribe":
        unsubscribe.subscribe(link, *_client(request))
    else:
        return render(request, "unsubscribe/error.html",
                      {"message": "Choose to unsubscribe or to subscribe again."}, status=400)
    return _page(request, link, data, sig, changed=action)

