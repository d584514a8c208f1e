"""Hostile AWS names in every URL that carries one (queue, bus, archive, alarm, schema,
message and event IDs) and in the correlation search: 400 or 404, before any cache or AWS
call (dashboard/converters.py), for an admin, on GET and on the mutating POSTs."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests import aws_calls as counting

aws_calls = counting.aws_calls
pytestmark = pytest.mark.django_db
E = "/env/default"

# (URL name, method, path with {} where the hostile name goes, kinds of name it takes)
URLS = [
    ("queue_detail", "get", E + "/queues/{}/"),
    ("operations:dlq_messages", "get", E + "/queues/{}/messages/"),
    ("operations:dlq_export", "get", E + "/queues/{}/messages/export.json"),
    ("operations:dlq_delete", "post", E + "/queues/{}/messages/delete/"),
    ("operations:dlq_edit", "get", E + "/queues/{}/messages/m-1/edit/"),
    ("operations:dlq_edit", "post", E + "/queues/orders-dlq/messages/{}/edit/"),
    ("operations:dlq_message_body", "get", E + "/queues/{}/messages/m-1/body/"),
    ("operations:dlq_message_body", "get", E + "/queues/orders-dlq/messages/{}/body/"),
    ("operations:dlq_scan", "post", E + "/queues/{}/scan/"),
    ("operations:redrive", "get", E + "/queues/{}/redrive/"),
    ("operations:redrive_start", "post", E + "/queues/{}/redrive/start/"),
    ("bus_detail", "get", E + "/buses/{}/"),
    ("archive_detail", "get", E + "/archives/{}/"),
    ("archive_events", "get", E + "/archives/{}/events/"),
    ("archive_event", "get", E + "/archives/{}/events/e-1/?t=1767225600000"),
    ("archive_event", "get", E + "/archives/shop-archive/events/{}/?t=1767225600000"),
    ("replay_new", "get", E + "/archives/{}/replay/"),
    ("replay_start", "post", E + "/archives/{}/replay/start/"),
    ("republish", "post", E + "/archives/{}/republish/"),
    ("schema_detail", "get", E + "/schemas/{}/OrderPaid/"),
    ("schema_detail", "get", E + "/schemas/registry/{}/"),
    ("alarm_detail", "get", E + "/alarms/{}/"),
]
# Names AWS never makes in any of these places.
HOSTILE = {
    "too long": quote("a" * 400),
    "dot-dot": "../x",
    "only dots": "..",
    "control character": quote("orders\x01dlq"),
    "NUL": "orders%00dlq",
    "newline": quote("orders\ndlq"),
}
# ...and names only some places refuse: CloudWatch alarm and schema names may be Unicode.
UNICODE = {"unicode": quote("ördérs-dlq")}
UNICODE_ALLOWED = {"alarm_detail", "schema_detail"}


def _cases():
    for name, method, template in URLS:
        bad = HOSTILE | ({} if name in UNICODE_ALLOWED else UNICODE)
        for label, value in bad.items():
            yield pytest.param(method, template.format(value), id=f"{method}-{name}-{label}")


@pytest.mark.parametrize(("method", "path"), list(_cases()))
def test_a_hostile_name_is_refused_before_aws(ada, aws, aws_calls, method, path):
    response = getattr(ada, method)(path, {"reason": "x"} if method == "post" else None)
    assert response.status_code in (400, 404)
    assert dict(aws_calls) == {}


@pytest.mark.parametrize(
    "query", ["a" * 400, "../../etc", "corr\x00id", "corr\nid", 'x" OR 1=1', "ördér"]
)
def test_a_hostile_correlation_id_is_refused_before_aws(ada, aws, aws_calls, query):
    response = ada.get(E + "/search/", {"q": query})
    assert response.status_code in (400, 404)
    assert dict(aws_calls) == {}


def _named_urls_with_names(patterns: list, prefix: str = "", ns: str = "") -> set[str]:
    kinds = ("<queue:", "<bus:", "<archive:", "<alarm:", "<schema:", "<awsid:")
    found: set[str] = set()
    for entry in patterns:
        if isinstance(entry, URLResolver):
            sub = entry.namespace or ns
            found |= _named_urls_with_names(entry.url_patterns, prefix + str(entry.pattern), sub)
        elif isinstance(entry, URLPattern) and any(k in prefix + str(entry.pattern) for k in kinds):
            found.add(f"{ns}:{entry.name}" if ns else str(entry.name))
    return found


def test_every_url_that_carries_an_aws_name_is_covered():
    assert _named_urls_with_names(get_resolver().url_patterns) == {name for name, _, _ in URLS}


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("queue", "orders-dlq", True),
        ("queue", "a" * 75 + ".fifo", True),
        ("queue", "a" * 76 + ".fifo", False),
        ("queue", "a" * 81, False),
        ("bus", "aws.partner/saas.com/1234/orders", True),
        ("bus", "aws.partner/../orders", False),
        ("bus", "a//b", False),
        ("archive", "shop-archive.v2", True),
        ("archive", "a" * 49, False),
        ("alarm", "Orders: DLQ not empty / eu", True),
        ("alarm", "ünïcode alarm", True),
        ("alarm", "bell\x07", False),
        ("alarm", "zero\u200bwidth", False),
        ("awsid", "0b4c2c52-7f3d-4b1b-9a1e-5d4b1a2f9c10", True),
        ("awsid", "id with space", False),
    ],
)
def test_the_character_sets_and_lengths(kind, value, ok):
    from dashboard import converters

    assert converters.valid(kind, value) is ok


def test_the_counter_sees_a_valid_name_reach_aws(ada, aws, aws_calls):
    """The zero above is the counter's: a valid name on the same page makes AWS calls."""
    ada.get(E + "/queues/orders-dlq/messages/")
    ada.get(E + "/alarms/" + quote("ördérs alarm") + "/")
    assert aws_calls["sqs.GetQueueUrl"] == 1 and aws_calls["cloudwatch.DescribeAlarms"] >= 1
