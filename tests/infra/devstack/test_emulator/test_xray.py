"""X-Ray GetTraceSummaries: filter expressions, annotations, flags, ordering and pagination."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.devstack.emulator.xray import FilterError, compile_filter


def _trace_id(base: float, n: int) -> str:
    return f"1-{int(base):08x}-{n:024x}"


def _segment(
    trace_id: str, start: float, annotations: dict[str, Any], duration: float = 0.5, **flags: Any
) -> str:
    """A Lambda-style segment whose subsegment carries the annotations (as Powertools does)."""
    return json.dumps(
        {
            "trace_id": trace_id,
            "id": f"{random.getrandbits(64):016x}",
            "name": "eventops-demo-billing",
            "origin": "AWS::Lambda::Function",
            "start_time": start,
            "end_time": start + duration,
            "subsegments": [
                {
                    "id": f"{random.getrandbits(64):016x}",
                    "name": "process",
                    "start_time": start,
                    "end_time": start + duration / 2,
                    "annotations": annotations,
                    **flags,
                }
            ],
            **flags,
        }
    )


@pytest.fixture
def base() -> float:
    """A time window of its own for each test (traces are global to the backend)."""
    return float(random.randrange(1_500_000_000, 1_700_000_000, 1000))


def _put(client: Any, *documents: str) -> None:
    response = client("xray").put_trace_segments(TraceSegmentDocuments=list(documents))
    assert response["UnprocessedTraceSegments"] == []


def _summaries(client: Any, base: float, expression: str | None = None, **kw: Any) -> dict:
    params: dict[str, Any] = {"StartTime": base - 10, "EndTime": base + 600, **kw}
    if expression is not None:
        params["FilterExpression"] = expression
    return client("xray").get_trace_summaries(**params)


def test_annotation_filter_returns_only_that_trace_with_its_annotations(client, base):
    _put(
        client,
        _segment(_trace_id(base, 1), base + 1, {"correlation_id": "c-1"}),
        _segment(_trace_id(base, 2), base + 2, {"correlation_id": "c-2"}),
    )
    found = _summaries(client, base, 'annotation.correlation_id = "c-1"')["TraceSummaries"]
    assert [s["Id"] for s in found] == [_trace_id(base, 1)]
    assert found[0]["Annotations"]["correlation_id"][0]["AnnotationValue"] == {"StringValue": "c-1"}


def test_escaped_quote_and_backslash_match_literally(client, base):
    _put(client, _segment(_trace_id(base, 1), base + 1, {"correlation_id": 'a"b\\c'}))
    found = _summaries(client, base, r'annotation.correlation_id = "a\"b\\c"')
    assert len(found["TraceSummaries"]) == 1
    assert _summaries(client, base, 'annotation.correlation_id = "a"')["TraceSummaries"] == []


def test_and_or_numbers_and_booleans_combine(client, base):
    _put(
        client,
        _segment(_trace_id(base, 1), base + 1, {"attempt": 3, "retried": True, "kind": "x"}),
        _segment(_trace_id(base, 2), base + 2, {"attempt": 1, "retried": False, "kind": "y"}),
    )
    both = _summaries(client, base, "annotation.attempt >= 3 AND annotation.retried = true")
    either = _summaries(client, base, 'annotation.kind = "y" OR (annotation.attempt > 2)')
    assert [s["Id"] for s in both["TraceSummaries"]] == [_trace_id(base, 1)]
    assert len(either["TraceSummaries"]) == 2


def test_bare_annotation_key_means_present(client, base):
    _put(
        client,
        _segment(_trace_id(base, 1), base + 1, {"poison": "amount"}),
        _segment(_trace_id(base, 2), base + 2, {"other": "x"}),
    )
    found = _summaries(client, base, "annotation.poison")["TraceSummaries"]
    assert [s["Id"] for s in found] == [_trace_id(base, 1)]


@pytest.mark.parametrize(
    "expression",
    [
        'annotation.correlation_id = "unterminated',
        "annotation.correlation_id = ",
        'annotation.a = "x" AND',
        "((annotation.a)",
        'service("x") { fault }',
        "DROP TABLE traces; --",
        'annotation.x = "\\',
        "annotation[] = 1",
        "x" * 3000,
    ],
)
def test_hostile_filter_is_an_invalid_request_not_a_crash(client, base, expression):
    with pytest.raises(ClientError) as caught:
        _summaries(client, base, expression)
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_error_and_fault_flags_show_in_summaries_and_filters(client, base):
    _put(
        client,
        _segment(_trace_id(base, 1), base + 1, {"run": "f"}, fault=True),
        _segment(_trace_id(base, 2), base + 2, {"run": "f"}, error=True),
        _segment(_trace_id(base, 3), base + 3, {"run": "f"}),
    )
    faults = _summaries(client, base, 'annotation.run = "f" AND fault')["TraceSummaries"]
    healthy = _summaries(client, base, 'annotation.run = "f" AND ok')["TraceSummaries"]
    assert [(s["Id"], s["HasFault"], s["HasError"]) for s in faults] == [
        (_trace_id(base, 1), True, False)
    ]
    assert [s["Id"] for s in healthy] == [_trace_id(base, 3)]


def test_summaries_are_newest_first_with_duration_and_response_time(client, base):
    _put(
        client,
        _segment(_trace_id(base, 1), base + 1, {"k": "v"}, duration=2.0),
        _segment(_trace_id(base, 2), base + 5, {"k": "v"}, duration=0.25),
    )
    found = _summaries(client, base)["TraceSummaries"]
    assert [s["Id"] for s in found] == [_trace_id(base, 2), _trace_id(base, 1)]
    assert (found[1]["Duration"], found[1]["ResponseTime"]) == (2.0, 2.0)


def test_results_page_with_next_token(client, base, stack, monkeypatch):
    monkeypatch.setattr(stack.emulator, "xray_page_size", 2)
    _put(client, *(_segment(_trace_id(base, n), base + n, {"p": "q"}) for n in range(1, 6)))
    pages = (
        client("xray")
        .get_paginator("get_trace_summaries")
        .paginate(StartTime=base - 10, EndTime=base + 600, FilterExpression='annotation.p = "q"')
    )
    sizes = [len(page["TraceSummaries"]) for page in pages]
    assert sizes == [2, 2, 1]


def test_compile_filter_rejects_unknown_keywords():
    with pytest.raises(FilterError):
        compile_filter('edge("a", "b")')


def test_batch_get_traces_returns_each_document_whole(client, base):
    trace_id = _trace_id(base, 77)
    document = _segment(trace_id, base + 1, {"correlation_id": "c-77"})
    _put(client, document)

    traces = client("xray").batch_get_traces(TraceIds=[trace_id, _trace_id(base, 78)])

    assert [s["Document"] for s in traces["Traces"][0]["Segments"]] == [document]
    assert traces["UnprocessedTraceIds"] == [_trace_id(base, 78)]


def test_stored_segments_keep_their_document_without_moto_s_parsed_copies(client, base, stack):
    from moto.xray.models import xray_backends

    trace_id = _trace_id(base, 79)
    _put(client, _segment(trace_id, base + 1, {"correlation_id": "c-79"}))

    stored = xray_backends["123456789012"]["us-east-1"]._segment_collection._traces[trace_id]
    segment = stored["segments"][0]
    assert segment.subsegments is None and segment.annotations is None
    assert json.loads(segment.raw)["subsegments"][0]["annotations"] == {"correlation_id": "c-79"}
