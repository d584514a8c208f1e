"""Fixtures shared by the operations tests."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber

from operations.aws import client as aws_client


def _stubbed(service: str) -> Iterator[Stubber]:
    client = boto3.client(service, region_name="us-east-1")
    aws_client.override(service, client)
    try:
        with Stubber(client) as stubber:
            yield stubber
            stubber.assert_no_pending_responses()
    finally:
        aws_client.reset()


@pytest.fixture
def sqs_stub() -> Iterator[Stubber]:
    """The shared SQS client, stubbed: for the APIs moto lacks (the native move task).
    Every response a test adds must be used."""
    yield from _stubbed("sqs")


@pytest.fixture
def events_stub() -> Iterator[Stubber]:
    """The shared EventBridge client, stubbed: the exact replay requests, and AWS errors
    moto never answers with (throttling, 5xx). Every response a test adds must be used."""
    yield from _stubbed("events")
