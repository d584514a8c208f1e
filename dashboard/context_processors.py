"""Template context shared by every page."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from operations.aws import client as aws_client

# (label, URL name). An item is shown only once its page exists, so the
# navigation never links to a placeholder.
NAV_ITEMS = (
    ("Overview", "overview"),
    ("Queues", "queues"),
    ("Alarms", "alarms"),
    ("Traces", "correlation"),
    ("Archive", "archives"),
    ("Schemas", "schemas"),
    ("Operations", "operations:list"),
)


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def navigation(request: HttpRequest) -> dict[str, object]:
    items = []
    for label, name in NAV_ITEMS:
        url = _url(name)
        if url is not None:
            items.append({"label": label, "url": url, "active": _is_active(request.path, url)})
    return {
        "nav_items": items,
        "search_url": _url("correlation"),
        "aws_endpoint": settings.AWS_ENDPOINT_URL,
        "aws_endpoint_host": _host(settings.AWS_ENDPOINT_URL),
        "aws_region": aws_client.region(),
        "poll_seconds": settings.EVENTOPS_POLL_SECONDS,
    }


def _host(url: str) -> str:
    """The host (and port) of an endpoint URL, or the URL itself if it has none."""
    if not url:
        return ""
    return urlsplit(url).netloc or url


def _is_active(path: str, url: str) -> bool:
    if url == "/":
        return path == "/"
    return path.startswith(url)
