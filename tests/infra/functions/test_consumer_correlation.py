"""The correlation ID reaches the X-Ray subsegment, the logs and the idempotency record."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from infra.functions.consumer import build_consumer_handler
from tests.infra.functions.fn_helpers import envelope, paid_detail, sqs_event


class RecordedSegment(BaseSegment):
    def __init__(self, name: str) -> None:
        self.name = name
        self.annotations: dict[str, Any] = {}

    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        pass


class RecordingProvider(BaseProvider):
    """Records subsegments; annotations on the current (facade) segment go to ``facade``."""

    def __init__(self) -> None:
        self.subsegments: list[RecordedSegment] = []
        self.facade: dict[str, Any] = {}

    @contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Iterator[RecordedSegment]:
        segment = RecordedSegment(name or "")
        self.subsegments.append(segment)
        yield segment

    def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> Any:
        raise AssertionError("not used")

    def put_annotation(self, key: str, value: Any) -> None:
        self.facade[key] = value

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Any) -> None:
        pass

    def patch_all(self) -> None:
        pass


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> RecordingProvider:
    # Tracer keeps its configuration on the class; give this test a fresh copy.
    monkeypatch.setattr(Tracer, "_config", copy.copy(Tracer._default_config))
    return RecordingProvider()


def test_correlation_id_is_annotated_on_a_subsegment_not_the_facade(tables, provider):
    tracer = Tracer(service="test", provider=provider, disabled=False, auto_patch=False)
    consumer = build_consumer_handler(
        "notifications", idempotency_table=tables.idempotency, tracer=tracer
    )

    consumer(sqs_event(envelope("OrderPaid", paid_detail("o-9"))), None)

    (segment,) = provider.subsegments
    assert (segment.name, segment.annotations["correlation_id"]) == (
        "## notifications.message",
        "corr-o-9",
    )
    assert provider.facade == {}


def test_correlation_id_falls_back_to_the_sqs_message_attribute(tables, provider):
    tracer = Tracer(service="test", provider=provider, disabled=False, auto_patch=False)
    consumer = build_consumer_handler(
        "notifications", idempotency_table=tables.idempotency, tracer=tracer
    )

    result = consumer(
        sqs_event({"garbled": True}, attributes={"correlation_id": "corr-attr"}), None
    )

    assert provider.subsegments[0].annotations["correlation_id"] == "corr-attr"
    assert len(result["batchItemFailures"]) == 1


def test_correlation_id_is_in_every_structured_log_line_of_the_message(tables, log_capture):
    logger, lines = log_capture
    consumer = build_consumer_handler(
        "notifications", idempotency_table=tables.idempotency, logger=logger
    )

    consumer(sqs_event(envelope("OrderPaid", paid_detail("o-3"))), None)

    logged = lines()
    assert {line["message"] for line in logged} >= {"notification sent", "event processed"}
    assert {line.get("correlation_id") for line in logged} == {"corr-o-3"}


def test_correlation_keys_are_removed_after_the_message(tables, log_capture):
    logger, lines = log_capture
    consumer = build_consumer_handler(
        "notifications", idempotency_table=tables.idempotency, logger=logger
    )

    consumer(sqs_event(envelope("OrderPaid", paid_detail("o-3"))), None)
    logger.info("after the batch")

    assert "correlation_id" not in lines()[-1]
