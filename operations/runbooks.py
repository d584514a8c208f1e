"""An alarm's runbook: the URL in its ``runbook`` tag, else the first URL in its
AlarmDescription (the CDK construct sets both, infra/constructs.py).

Tags cost one ListTagsForResource per alarm, so they are cached as long as the rest of
the structure (``EVENTOPS_TOPOLOGY_TTL``); lists (the overview) use only what is known
without a call: the cached tag, else the description.
"""

from __future__ import annotations

import re

from django.core.cache import cache

from operations.aws import cloudwatch
from operations.aws.cloudwatch import Alarm
from operations.cache import cache_key, cached
from operations.topology import structure_ttl

TAG = "runbook"
URL = re.compile(r"https?://[^\s<>\"')\]]+")


def _url(text: str) -> str:
    """The first http(s) URL in ``text``, without trailing punctuation; "" if none."""
    match = URL.search(text or "")
    return match.group(0).rstrip(".,;:!?") if match else ""


def _tags_name(alarm: Alarm) -> str:
    return f"alarm-tags:{alarm.arn}"


def runbook(alarm: Alarm) -> str:
    """The alarm's runbook URL (reads its tags, cached); "" when it names none."""
    if alarm.arn:
        tags = cached(
            _tags_name(alarm), lambda: cloudwatch.alarm_tags(alarm.arn), max_age=structure_ttl()
        )
        url = _url((tags.value or {}).get(TAG, ""))
        if url:
            return url
    return _url(alarm.description)


def known_runbook(alarm: Alarm) -> str:
    """``runbook`` without an AWS call: a cached tag, else the description."""
    # ``cached`` keeps (fetched_at, value) under the key; stale is fine for a link.
    entry = cache.get(cache_key(_tags_name(alarm))) if alarm.arn else None
    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], dict):
        url = _url(entry[1].get(TAG, ""))
        if url:
            return url
    return _url(alarm.description)


def for_queue(queue_name: str) -> str:
    """The runbook of the first alarm watching ``queue_name`` that names one (from the
    cached alarm list of the current environment), or ""."""
    from operations import topology

    found = topology.alarms().value or []
    for alarm in topology.alarms_by_queue(found).get(queue_name, []):
        url = known_runbook(alarm)
        if url:
            return url
    return ""
