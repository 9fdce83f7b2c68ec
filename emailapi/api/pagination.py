"""Offset pagination in EmailEngine's shape: ``page`` (0-based) and ``pageSize`` in,
``total``, ``page`` and ``pages`` out, the items under a key the view names."""

from __future__ import annotations

import math

from rest_framework import serializers

from emailapi.api.serializers import QuerySerializer

MAX_PAGE_SIZE = 1000
# page * pageSize is an SQL OFFSET, a bigint: an unbounded page (99999999999999999999) made the
# database refuse the query, a 500. Ten million pages is more than any listing holds.
MAX_PAGE = 10_000_000


class PageQuerySerializer(QuerySerializer):
    page = serializers.IntegerField(min_value=0, max_value=MAX_PAGE, default=0,
                                    help_text="Page number, from 0")
    pageSize = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE_SIZE, default=20, help_text="Items per page, 1-1000"
    )


def paginate(queryset, page: int, page_size: int) -> tuple[list, dict]:
    """Return the page's items and the ``total``/``page``/``pages`` counters."""
    total = queryset.count()
    start = page * page_size
    items = list(queryset[start:start + page_size]) if start < total else []
    return items, {"total": total, "page": page, "pages": max(1, math.ceil(total / page_size))}
