"""The DLQ reprocessor starts SQS's own move task with one call and returns its handle.

moto lacks StartMessageMoveTask: botocore's Stubber asserts the exact request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from infra.functions import dlq_reprocessor
from infra.functions.dlq_reprocessor import handler

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:orders-dlq"
SOURCE_ARN = "arn:aws:sqs:us-east-1:123456789012:orders"
HANDLE = "eyJ0YXNrIjoiMSJ9"


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The handler's SQS client, stubbed; every expected request must be made."""
    client = boto3.client("sqs", region_name="us-east-1")
    monkeypatch.setattr(dlq_reprocessor, "new_client", lambda service: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def expect_start(stub: Stubber, **request: Any) -> None:
    stub.add_response("start_message_move_task", {"TaskHandle": HANDLE}, request)


def test_one_call_starts_the_move_back_to_the_original_sources(sqs: Stubber) -> None:
    expect_start(sqs, SourceArn=DLQ_ARN)
    result = handler({"dlq_arn": DLQ_ARN}, None)
    assert result == {
        "task_handle": HANDLE,
        "source_arn": DLQ_ARN,
        "destination_arn": "",
        "rate": None,
    }


def test_rate_and_destination_go_into_the_request(sqs: Stubber) -> None:
    expect_start(sqs, SourceArn=DLQ_ARN, DestinationArn=SOURCE_ARN, MaxNumberOfMessagesPerSecond=25)
    result = handler({"dlq_arn": DLQ_ARN, "rate": 25, "destination": SOURCE_ARN}, None)
    assert (result["task_handle"], result["rate"]) == (HANDLE, 25)


def test_a_second_start_refused_by_sqs_is_raised_not_hidden(sqs: Stubber) -> None:
    sqs.add_client_error(
        "start_message_move_task",
        service_error_code="InvalidParameterValue",
        service_message="There is already a task running",
        http_status_code=400,
        expected_params={"SourceArn": DLQ_ARN},
    )
    with pytest.raises(Exception, match="already a task running"):
        handler({"dlq_arn": DLQ_ARN}, None)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "dlq_arn"),
        ({"dlq_url": "https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq"}, "dlq_arn"),
        ({"dlq_arn": "orders-dlq"}, "must be an SQS queue ARN"),
        ({"dlq_arn": DLQ_ARN, "rate": 0}, "1-500"),
        ({"dlq_arn": DLQ_ARN, "rate": 501}, "1-500"),
        ({"dlq_arn": DLQ_ARN, "rate": 2.5}, "whole number"),
        ({"dlq_arn": DLQ_ARN, "destination": "arn:aws:sns:us-east-1:1:t"}, "destination"),
    ],
    ids=["no-arn", "old-url-event", "not-an-arn", "rate-0", "rate-501", "rate-float", "sns"],
)
def test_a_bad_event_is_refused_before_any_call(
    sqs: Stubber, event: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        handler(event, None)
