"""Clients follow the acting environment; a role is assumed as the person who acts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from operations.aws import client as aws_client
from operations.aws import context
from operations.aws.context import ContextThreadPoolExecutor, Target

ROLE = "arn:aws:iam::111111111111:role/eventops-dashboard"
PROD = Target(name="prod", region="eu-west-1", role_arn=ROLE)
STAGING = Target(name="staging", region="us-west-2", endpoint_url="http://127.0.0.1:9")


def credentials(expires_in: timedelta) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLE00000000",
            "SecretAccessKey": "secret",
            "SessionToken": "token",
            "Expiration": datetime.now(UTC) + expires_in,
        }
    }


@pytest.fixture
def sts(monkeypatch: pytest.MonkeyPatch) -> Stubber:
    """One stubbed STS client for every target: each AssumeRole must be expected."""
    real = aws_client.sts_client(PROD)
    stubber = Stubber(real)
    stubber.activate()
    monkeypatch.setattr(aws_client, "sts_client", lambda target: real)
    yield stubber
    stubber.deactivate()


def expect_assume(sts: Stubber, username: str, expires_in: timedelta = timedelta(hours=1)) -> None:
    sts.add_response(
        "assume_role",
        credentials(expires_in),
        {
            "RoleArn": ROLE,
            "RoleSessionName": f"eventops-{username}",
            "SourceIdentity": username,
            "DurationSeconds": 3600,
        },
    )


def frozen_credentials() -> Any:
    return aws_client.session().get_credentials().get_frozen_credentials()


def test_a_client_uses_the_acting_environment_region_and_endpoint() -> None:
    with context.acting(STAGING, "alice"):
        sqs = aws_client.client("sqs")
    assert (sqs.meta.region_name, sqs.meta.endpoint_url) == ("us-west-2", "http://127.0.0.1:9")


def test_each_environment_has_its_own_client() -> None:
    with context.acting(STAGING):
        staging = aws_client.client("sqs")
    assert aws_client.client("sqs") is not staging


def test_a_role_is_assumed_as_the_person_who_acts(sts: Stubber) -> None:
    expect_assume(sts, "alice")
    with context.acting(PROD, "alice"):
        assert frozen_credentials().access_key == "ASIAEXAMPLE00000000"
    sts.assert_no_pending_responses()


def test_credentials_are_cached_per_person_and_environment(sts: Stubber) -> None:
    expect_assume(sts, "alice")
    expect_assume(sts, "bob")
    for person in ("alice", "alice", "bob", "alice"):
        with context.acting(PROD, person):
            frozen_credentials()
            aws_client.client("sqs")
    sts.assert_no_pending_responses()  # one AssumeRole each, no more


def test_credentials_are_assumed_again_shortly_before_they_expire(sts: Stubber) -> None:
    expect_assume(sts, "alice", expires_in=timedelta(minutes=5))
    expect_assume(sts, "alice")
    with context.acting(PROD, "alice"):
        frozen_credentials()
        frozen_credentials()
    sts.assert_no_pending_responses()


def test_session_name_and_source_identity_use_aws_alphabet() -> None:
    assert context.role_session_name("ann o'neil") == "eventops-ann-o-neil"
    assert len(context.role_session_name("x" * 100)) == 64
    assert context.source_identity("a") == "a-"
    assert context.source_identity("") == ""


def test_a_fan_out_keeps_the_environment() -> None:
    with context.acting(STAGING, "alice"), ContextThreadPoolExecutor(max_workers=2) as pool:
        seen = list(pool.map(lambda _: context.current(), range(3)))
        one = pool.submit(context.current).result()
    assert {acting.target.name for acting in [*seen, one]} == {"staging"}  # type: ignore[union-attr]
