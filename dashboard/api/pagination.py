"""Lists are paginated with ``limit`` and ``offset``; ``next`` and ``previous`` are the
absolute URLs of the neighbouring pages (null at either end)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Schema

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class ListParams(Schema):
    """``limit`` and ``offset`` of a list (subclass it to add filters)."""

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0)


def page(
    request: HttpRequest,
    items: Sequence[T] | QuerySet[Any],
    limit: int,
    offset: int,
    render: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    count = items.count() if isinstance(items, QuerySet) else len(items)
    chunk = items[offset : offset + limit]
    return {
        "count": count,
        "next": _link(request, limit, offset + limit) if offset + limit < count else None,
        "previous": _link(request, limit, max(0, offset - limit)) if offset > 0 else None,
        "results": [render(item) for item in chunk],
    }


def _link(request: HttpRequest, limit: int, offset: int) -> str:
    query = request.GET.copy()
    query["limit"] = str(limit)
    query["offset"] = str(offset)
    return request.build_absolute_uri(f"{request.path}?{urlencode(sorted(query.items()))}")
