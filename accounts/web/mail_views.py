"""Reading a mailbox's mail in the dashboard: its folders, a folder page by page, a search,
one message (headers, text, HTML in a sandboxed frame) and its attachments.

The same services as the API answer (``mailboxes.listing``, ``mailboxes.index_search``,
``mailboxes.reading``), called in-process, never over HTTP; every lookup starts from the
session's tenant, so another tenant's mailbox or message is a 404 like a missing one.

The message's HTML is already made web-safe by ``mailboxes.web_html`` (nh3: no scripts, no
event handlers, no forms), and is shown only inside ``<iframe sandbox srcdoc>``: without
``allow-scripts`` nothing in it runs, and without ``allow-same-origin`` it is an opaque origin
that cannot reach the dashboard's cookies or pages. A policy inside the frame (and one on the
page) refuses scripts, and remote images unless the reader asks for them (they tell the
sender the message was opened).
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import EmailAccount
from accounts.web.tenancy import tenant_view
from emailapi.api.errors import status_of
from emailapi.lib.errors import DomainError, NotFound
from mailboxes import index_search, listing, reading, web_html
from mailboxes.api.content import stream_download

PAGE_SIZE = 25
MAX_TEXT_BYTES = 2 * 1024 * 1024
SEARCH_MAX = 200  # characters of a search box's text

# The frame's own policy: no script at all, styles inline only, images from the message
# itself (data: URIs) unless remote ones are allowed; no form, no frame, no fetch.
FRAME_POLICY = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; "
                "img-src data:{remote}; font-src data:; form-action 'none'; base-uri 'none'")
# The message page's policy (a srcdoc frame inherits it as well): the dashboard's own script
# and style only.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:{remote}; frame-src 'self'; object-src 'none'; "
               "base-uri 'none'; form-action 'self'")


def account_or_404(request, account_id: str) -> EmailAccount:
    account = EmailAccount.of_tenant(request.tenant, account_id)
    if account is None:
        raise Http404("No such mailbox")
    return account


def _refused(request, account: EmailAccount, error: DomainError, template: str, context: dict):
    """A service's refusal as the page's own error (404 for what is not there)."""
    if isinstance(error, NotFound):
        raise Http404(error.message)
    context.update(account=account, error=error.message, page="mailboxes")
    return render(request, template, context, status=status_of(error))


@require_GET
@tenant_view()
def mail(request, account_id: str):
    """A folder newest first, page by page (the listing's cursors), or the results of a search
    of one folder or of all (the index: subject, sender and recipients)."""
    account = account_or_404(request, account_id)
    progress = listing.sync_progress(account)
    path = request.GET.get("path") or "INBOX"
    query = request.GET.get("q", "").strip()[:SEARCH_MAX]
    everywhere = request.GET.get("in") == "all"
    context = {"account": account, "progress": progress, "path": path, "q": query,
               "everywhere": everywhere, "page": "mailboxes", "result": None}
    if not progress.folders:
        return render(request, "dashboard/mail.html", context)
    try:
        if query:
            context["result"] = _search(account, path, query, everywhere,
                                        _page_number(request))
        else:
            context["result"] = listing.tenant_page(request.tenant, account.account_id, path,
                                                    0, PAGE_SIZE,
                                                    request.GET.get("cursor") or None)
    except DomainError as exc:
        return _refused(request, account, exc, "dashboard/mail.html", context)
    return render(request, "dashboard/mail.html", context)


def _page_number(request) -> int:
    try:
        return max(0, min(int(request.GET.get("page", "0")), 10_000))
    except ValueError:
        return 0


def _search(account: EmailAccount, path: str, query: str, everywhere: bool, page: int) -> dict:
    folder = None if everywhere else listing.folder_for_path(account, path)
    criteria = {"or": [{"subject": query}, {"from": query}, {"to": query}, {"cc": query}]}
    result = index_search.search(account.pk, folder, criteria, page, PAGE_SIZE)
    result["previousPage"] = page - 1 if page > 0 else None
    result["nextPage"] = page + 1 if page + 1 < result["pages"] else None
    return result


@require_GET
@tenant_view()
def message(request, account_id: str, message_id: str):
    account = account_or_404(request, account_id)
    remote_images = request.GET.get("images") == "remote"
    context = {"account": account, "page": "mailboxes", "remote_images": remote_images}
    try:
        detail = reading.message_detail(
            account, message_id, "*", MAX_TEXT_BYTES, mark_as_seen=False, with_headers=True,
            html=reading.HtmlOptions(web_safe=True, embed_images=True))
    except DomainError as exc:
        return _refused(request, account, exc, "dashboard/message.html", context)
    text = detail.get("text") or {}
    remote = " https: http:" if remote_images else ""
    context.update(message=detail, plain=text.get("plain") or "",
                   frame=_frame_document(
                       web_html.with_images_limited(text.get("html") or "", remote_images),
                       remote),
                   has_html=bool(text.get("html")),
                   headers=sorted((detail.get("headers") or {}).items()),
                   attachments=[a for a in detail.get("attachments") or []
                                if not a.get("embedded") or a.get("filename")])
    response = render(request, "dashboard/message.html", context)
    response["Content-Security-Policy"] = PAGE_POLICY.format(remote=remote)
    return response


def _frame_document(html: str, remote: str) -> str:
    """The sanitized HTML as the frame's whole document, under its own policy (a second lock:
    the sandbox already forbids scripts)."""
    policy = FRAME_POLICY.format(remote=remote)  # a constant: no quote of its own to escape
    return (f'<!doctype html><html><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
            f'<base target="_blank">'
            f"<style>body{{font:15px/1.5 system-ui,sans-serif;margin:1rem;color:#1d2430;"
            f"overflow-wrap:anywhere}}img{{max-width:100%;height:auto}}"
            # The folded thread history (mailboxes.quoted_history): its summary is empty.
            f".ee-collapsed-thread-toggle{{cursor:pointer;color:#667}}"
            f".ee-collapsed-thread-toggle::after{{content:'\\2026'}}</style></head>"
            f"<body>{html}</body></html>")


@require_GET
@tenant_view()
def attachment(request, account_id: str, attachment_id: str):
    """An attachment, streamed from the server (the session authenticates, the tenant scopes:
    an id of another tenant's mailbox does not decode for this one)."""
    account = account_or_404(request, account_id)
    try:
        download = reading.attachment_download(account, attachment_id)
    except DomainError as exc:
        return _refused(request, account, exc, "dashboard/message.html",
                        {"page": "mailboxes"})
    response = stream_download(request, download, attachment=True)
    response["X-Content-Type-Options"] = "nosniff"
    return response
