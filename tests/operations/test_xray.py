"""X-Ray adapter: exact requests (filter expressions, windowing, chunking) with Stubber."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber

from operations.aws import client as aws_client
from operations.aws import xray
from operations.aws.errors import AwsError

T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


@pytest.fixture
def stub():
    xray_client = aws_client.client("xray")
    with Stubber(xray_client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def summary(trace_id: str, **extra):
    return {"Id": trace_id, "StartTime": T0, "Duration": 0.5, "HasError": False, **extra}


def segment_doc(seg_id: str, name: str, start: float, end: float, **extra) -> str:
    return json.dumps({"id": seg_id, "name": name, "start_time": start, "end_time": end, **extra})


def test_filter_expression_is_exact_annotation_equality():
    assert xray.correlation_filter("order-42") == 'annotation.correlation_id = "order-42"'


@pytest.mark.parametrize(
    "hostile", ['" OR annotation.x = "1', 'a"b', "a\\b", "line\nbreak", "", "x" * 10_000]
)
def test_filter_expression_refuses_values_that_could_escape_the_quotes(hostile):
    with pytest.raises(ValueError):
        xray.correlation_filter(hostile)


def test_windows_split_a_day_into_four_six_hour_windows():
    spans = xray.windows(T0, T0 + timedelta(hours=24))
    assert len(spans) == 4
    assert spans[0] == (T0, T0 + timedelta(hours=6)) and spans[-1][1] == T0 + timedelta(hours=24)


def test_windows_keep_a_short_last_window():
    spans = xray.windows(T0, T0 + timedelta(hours=7))
    assert spans == [
        (T0, T0 + timedelta(hours=6)),
        (T0 + timedelta(hours=6), T0 + timedelta(hours=7)),
    ]


def test_each_window_is_requested_with_the_filter_and_paginated(stub):
    expression = xray.correlation_filter("c-1")
    for index, (start, end) in enumerate(xray.windows(T0, T0 + timedelta(hours=12))):
        expected = {"StartTime": start, "EndTime": end, "FilterExpression": expression}
        if index == 0:
            stub.add_response(
                "get_trace_summaries",
                {
                    "TraceSummaries": [summary("1-00000001-aaaaaaaaaaaaaaaaaaaaaaaa")],
                    "NextToken": "p2",
                },
                expected,
            )
            stub.add_response(
                "get_trace_summaries",
                {"TraceSummaries": [summary("1-00000002-aaaaaaaaaaaaaaaaaaaaaaaa")]},
                {**expected, "NextToken": "p2"},
            )
        else:
            stub.add_response("get_trace_summaries", {"TraceSummaries": []}, expected)
    found = xray.find_trace_summaries(expression, T0, T0 + timedelta(hours=12), max_workers=1)
    assert [s.id for s in found] == [
        "1-00000001-aaaaaaaaaaaaaaaaaaaaaaaa",
        "1-00000002-aaaaaaaaaaaaaaaaaaaaaaaa",
    ]


def test_windows_are_queried_in_parallel(monkeypatch):
    # Four windows must be in flight at once for the barrier to open; sequential calls
    # would break it (BrokenBarrierError) instead of passing.
    barrier = threading.Barrier(4, timeout=10)
    seen = []

    def fake(expression, start, end):
        seen.append((start, end))
        barrier.wait()
        return [
            xray.TraceSummary(
                f"1-{int(start.timestamp()):08x}-{'a' * 24}", start, 1.0, None, False, False, False
            )
        ]

    monkeypatch.setattr(xray, "get_trace_summaries", fake)
    found = xray.find_trace_summaries("f", T0, T0 + timedelta(hours=24))
    assert len(seen) == 4
    assert [s.start for s in found] == sorted(s.start for s in found)


def test_batch_get_traces_asks_for_at_most_five_ids_per_call(stub):
    ids = [f"1-{n:08x}-{'b' * 24}" for n in range(12)]
    for chunk in (ids[0:5], ids[5:10], ids[10:12]):
        traces = [
            {
                "Id": i,
                "Duration": 0.1,
                "Segments": [{"Id": "s", "Document": segment_doc("s", "api", 1.0, 1.1)}],
            }
            for i in chunk
        ]
        stub.add_response("batch_get_traces", {"Traces": traces}, {"TraceIds": chunk})
    found = xray.batch_get_traces(ids, max_workers=1)
    assert [t.id for t in found] == ids


def test_segments_and_subsegments_are_nested_with_faults():
    doc = segment_doc(
        "root",
        "billing",
        10.0,
        10.5,
        subsegments=[
            {
                "id": "c1",
                "name": "charge",
                "start_time": 10.1,
                "end_time": 10.4,
                "fault": True,
                "annotations": {"correlation_id": "c-9"},
                "cause": {"exceptions": [{"message": "card declined"}]},
            },
        ],
    )
    trace = xray.parse_documents("1-x", 0.5, [doc, "not json"])
    walked = [(depth, seg.name, seg.fault) for depth, seg in trace.walk()]
    assert walked == [(0, "billing", False), (1, "charge", True)]
    assert (
        trace.annotation("correlation_id") == "c-9"
        and trace.segments[0].children[0].cause == "card declined"
    )


def test_empty_batch_get_traces_falls_back_to_trace_retrieval(stub):
    trace_id = "1-00000001-cccccccccccccccccccccccc"
    stub.add_response("batch_get_traces", {"Traces": []}, {"TraceIds": [trace_id]})
    stub.add_response(
        "start_trace_retrieval",
        {"RetrievalToken": "tok"},
        {"TraceIds": [trace_id], "StartTime": T0, "EndTime": T0 + timedelta(hours=1)},
    )
    stub.add_response(
        "list_retrieved_traces",
        {
            "RetrievalStatus": "COMPLETE",
            "Traces": [
                {
                    "Id": trace_id,
                    "Duration": 0.2,
                    "Spans": [{"Id": "s", "Document": segment_doc("s", "api", 1, 2)}],
                }
            ],
        },
        {"RetrievalToken": "tok", "TraceFormat": "XRAY"},
    )
    found = xray.get_traces([trace_id], T0, T0 + timedelta(hours=1))
    assert [t.id for t in found] == [trace_id]
    assert found[0].segments[0].name == "api"


def test_throttling_is_a_transient_aws_error(stub):
    stub.add_client_error(
        "get_trace_summaries", service_error_code="ThrottledException", http_status_code=429
    )
    with pytest.raises(AwsError) as caught:
        xray.get_trace_summaries("f", T0, T0 + timedelta(hours=1))
    assert caught.value.transient and caught.value.operation == "GetTraceSummaries"
