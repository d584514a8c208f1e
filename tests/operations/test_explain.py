"""AWS errors read in three kinds, on pages and in commands."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from operations import cache, explain
from operations.aws import context as aws_context
from operations.aws.errors import AwsError, translate


def _client_error(code: str, message: str, status: int, operation: str) -> AwsError:
    client = boto3.client(
        "sqs",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 1}),
    )
    with Stubber(client) as stub:
        stub.add_client_error("list_queues", code, message, http_status_code=status)
        with pytest.raises(ClientError) as raised:
            client.list_queues()
    return translate(raised.value, operation)


def test_throttling_is_transient_and_the_page_retries():
    error = _client_error("ThrottlingException", "Rate exceeded", 400, "ListQueues")
    assert explain.kind_of(error) is explain.Kind.TRANSIENT
    assert "Retrying on the next refresh" in explain.describe(error)


def test_transient_in_a_command_says_run_again_not_refresh():
    error = _client_error("ServiceUnavailable", "down", 503, "ListQueues")
    text = explain.describe(error, command=True)
    assert "refresh" not in text.lower() and "Run the command again" in text


def test_access_denied_names_the_action_and_the_role_from_aws_message():
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/eventops-dashboard/eventops-alice "
        "is not authorized to perform: sqs:ListQueues on resource: *"
    )
    error = _client_error("AccessDenied", message, 403, "ListQueues")
    text = explain.describe(error)
    assert explain.kind_of(error) is explain.Kind.PERMISSION
    assert "sqs:ListQueues" in text and "the role eventops-dashboard" in text


def test_access_denied_without_principal_names_the_environment_role():
    error = AwsError("denied", code="AccessDeniedException", operation="DescribeAlarms")
    target = aws_context.Target(
        name="prod", region="eu-west-1", role_arn="arn:aws:iam::1:role/ops-read"
    )
    with aws_context.acting(target, "alice"):
        text = explain.describe(error, command=True)
    assert "cloudwatch:DescribeAlarms" in text and "arn:aws:iam::1:role/ops-read" in text


def test_not_implemented_is_unavailable_not_transient():
    # What moto answers for an X-Ray filter expression: InternalFailure, a 500.
    error = _client_error("InternalFailure", "Not implemented yet - moto", 500, "ListQueues")
    assert error.transient  # by its code alone it would be retried...
    assert explain.kind_of(error) is explain.Kind.UNAVAILABLE  # ...but it never will work
    text = explain.describe(error)
    assert "not available at this endpoint" in text and "Retrying" not in text


def test_unknown_operation_is_unavailable():
    error = AwsError("no such API", code="UnknownOperationException", operation="ListRegistries")
    assert explain.kind_of(error) is explain.Kind.UNAVAILABLE


def test_a_bad_parameter_reads_as_aws_said_it():
    error = AwsError("bad name", code="InvalidParameterValue", operation="GetQueueUrl")
    assert explain.kind_of(error) is explain.Kind.OTHER
    assert explain.describe(error) == "GetQueueUrl: InvalidParameterValue: bad name"


def test_cached_read_keeps_both_wordings(settings):
    settings.EVENTOPS_CACHE_TTL = 15

    def fail():
        raise AwsError("slow", code="RequestTimeout", operation="ListQueues", transient=True)

    found = cache.cached("explain-test", fail)
    assert found.error_kind == "transient" and "refresh" in found.error
    assert "refresh" not in found.command_error
