"""Search: IMAP SEARCH on the server, or the index alone (``source=index``). Criteria come as
a JSON ``{"search"}`` object (``POST``) or as ``search[...]`` query parameters (``GET``, parsed
by ``mailboxes.api.query``); either way ``SearchCriteriaSerializer`` validates them.
"""

from __future__ import annotations

import base64
import binascii
import imaplib
import json
import math

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from emailapi.api.pagination import MAX_PAGE, PageQuerySerializer
from emailapi.api.serializers import StrictSerializer
from emailapi.api.views import ACCOUNT_PARAM, InvalidInput
from emailapi.lib import jsondepth
from mailboxes import bounces, index_search, listing
from mailboxes.api import query
from mailboxes.api.mail_views import MailboxAPIView
from mailboxes.api.search_serializer import SearchCriteriaSerializer
from mailboxes.api.serializers import (
    MessageListSerializer,
    document_store_field,
)
from mailboxes.command_pool import pool
from mailboxes.errors import InvalidCursor, SearchRefused, SearchUnsupported
from mailboxes.imap import search


class SearchQuerySerializer(PageQuerySerializer):
    path = serializers.CharField(max_length=1024, trim_whitespace=False, required=False,
                                 help_text="Folder to search; required unless source=index "
                                           "(then omitted means every folder)")
    source = serializers.ChoiceField(
        choices=["imap", "index"], default="imap",
        help_text="imap: IMAP SEARCH on the server (bodies, any header); index: the index "
                  "only, in milliseconds (subject, addresses, dates, flags, ids)")
    documentStore = document_store_field()
    useOutlookSearch = serializers.BooleanField(
        default=False, help_text="Accepted for EmailEngine clients: there it picks MS Graph's "
                                 "$search for Outlook accounts; accounts here are IMAP, so it "
                                 "changes nothing")
    cursor = serializers.CharField(max_length=512, required=False,
                                   help_text="nextPageCursor or prevPageCursor of a page "
                                             "(instead of page)")


class MessageSearchListSerializer(MessageListSerializer):
    """A page of search results: the shape of a listing's page."""


class SearchRequestSerializer(StrictSerializer):
    search = SearchCriteriaSerializer(required=False, help_text="Search criteria")


class SearchView(MailboxAPIView):
    """``GET`` (criteria as ``search[...]`` query parameters) and ``POST`` (``{"search"}``).
    Both only read, so a ``read`` token may POST a search too."""

    read_only_post = True
    checked_by_service = True  # a folder's search finds it with the account; without a
    # path, ``email_account`` is the account

    @extend_schema(operation_id="searchMessagesGet", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, SearchQuerySerializer],
                   responses={200: MessageSearchListSerializer}, summary="Search (GET)",
                   description="Criteria as `search[from]=...`, `search[seen]=false`, "
                               "`search[or][0][subject]=...`; otherwise as POST.")
    def get(self, request, account):
        params = {k: v for k, v in request.query_params.items() if not k.startswith("search[")}
        options = self.validated(SearchQuerySerializer, params)
        try:
            criteria = query.nested(request.query_params, "search")
        except query.BadQuery as exc:
            raise InvalidInput("search", str(exc)) from None
        return self._search(account, options, self.validated(
            SearchCriteriaSerializer, criteria, context={"source": options["source"]}))

    @extend_schema(operation_id="searchMessages", tags=["Message"],
                   parameters=[ACCOUNT_PARAM, SearchQuerySerializer],
                   request=SearchRequestSerializer,
                   responses={200: MessageSearchListSerializer}, summary="Search",
                   description="IMAP SEARCH on the server (default: bodies and any header, "
                               "UTF-8 aware, values sent as literals so nothing can inject "
                               "IMAP syntax), or `source=index` for the index alone (subject, "
                               "addresses, dates, flags, ids; every folder when `path` is "
                               "omitted). Newest first, paged like listings.")
    def post(self, request, account):
        options = self.validated(SearchQuerySerializer, request.query_params)
        body = self.validated(SearchRequestSerializer, request.data,
                              context={"source": options["source"]})
        return self._search(account, options, body.get("search") or {})

    def _search(self, account_id: str, options: dict, criteria: dict) -> Response:
        """*criteria* validated for the ``source`` of *options* (index-only criteria only
        reach an index search)."""
        if options.get("cursor"):
            options = {**options, "page": cursor_page(options["cursor"])}
        return Response(with_cursors(self._results(account_id, options, criteria)))

    def _results(self, account_id: str, options: dict, criteria: dict) -> dict:
        """The page of results, each with its ``bounces`` as in a listing."""
        from_index = options["source"] == "index"
        if options.get("path"):  # account and folder in one query
            folder = listing.tenant_folder(self.tenant, account_id, options["path"])
            account = folder.email_account
        else:
            folder, account = None, self.email_account
        if from_index:
            found = index_search.search(account.pk, folder, criteria, options["page"],
                                        options["pageSize"])
        elif folder is None:
            raise InvalidInput("path", "This field is required.",
                               "path is required for an IMAP search")
        else:
            found = imap_search(account, folder, criteria, options["page"], options["pageSize"])
        return {**found, "messages": bounces.on_page(account.pk, account.has_bounces,
                                                     found["messages"])}


# Search results are ranked afresh on each request, so their cursors are EmailEngine's: the
# page number, in EmailEngine's form (``imap_`` + base64url of ``{"page": n}``).
_CURSOR_PREFIX = "imap_"


def page_cursor(page: int) -> str:
    raw = json.dumps({"page": page}).encode()
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_page(cursor: str) -> int:
    try:
        body = cursor.removeprefix(_CURSOR_PREFIX)
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        page = jsondepth.loads(raw, 1)["page"]  # {"page": n}
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise InvalidCursor() from None
    if not isinstance(page, int) or isinstance(page, bool) or not 0 <= page <= MAX_PAGE:
        raise InvalidCursor()
    return page


def with_cursors(result: dict) -> dict:
    """EmailEngine's ``nextPageCursor``/``prevPageCursor`` of a page of results."""
    page, pages = result["page"], result["pages"]
    messages = result.pop("messages")
    result["nextPageCursor"] = page_cursor(page + 1) if page < pages - 1 else None
    result["prevPageCursor"] = page_cursor(min(page - 1, pages - 1)) if page > 0 else None
    result["messages"] = messages
    return result


def imap_search(account, folder, criteria, page: int, page_size: int) -> dict:
    resolve = index_search.id_resolver(folder, criteria)
    with pool.session(account) as session:
        try:
            uids = session.run_current(
                folder.path, lambda: search.uid_search(session.client, criteria,
                                                       resolve=resolve))
        except search.MissingExtension as exc:
            raise SearchUnsupported(f"search.{exc.path}", exc.message, exc.extension) from None
        except search.InvalidSearch as exc:
            raise InvalidInput(f"search.{exc.path}" if exc.path else "search", exc.message,
                               f"Invalid search: {exc.message}") from None
        except imaplib.IMAP4.abort:
            raise  # the connection is gone: the pool's own error
        except imaplib.IMAP4.error as exc:
            # A tagged NO/BAD: the command is over and the connection stays usable.
            raise SearchRefused(str(exc).removeprefix("UID SEARCH failed: ")) from None
    uids.sort(reverse=True)
    chosen = uids[page * page_size:(page + 1) * page_size]
    found = listing.summaries(folder, chosen)
    return {"total": len(uids), "page": page,
            "pages": max(1, math.ceil(len(uids) / page_size)),
            "messages": [found[uid] for uid in chosen if uid in found]}
