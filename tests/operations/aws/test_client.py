"""The client factory's Region: the variables, else the profile's, else us-east-1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.validate import ParamValidationDecorator

from operations.aws import client as aws_client


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings) -> Iterator[str]:
    """An AWS_PROFILE whose config names eu-west-2, and no Region variable set."""
    config = tmp_path / "config"
    config.write_text("[profile eventops-test]\nregion = eu-west-2\n\n[default]\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    settings.AWS_PROFILE = "eventops-test"
    settings.AWS_REGION = ""
    settings.AWS_ENDPOINT_URL = ""
    aws_client.reset()
    yield "eventops-test"
    aws_client.reset()


def test_the_profiles_region_applies_when_no_region_variable_is_set(profile):
    assert aws_client.client("sqs").meta.region_name == "eu-west-2"
    assert aws_client.region() == "eu-west-2"


def test_a_region_variable_overrides_the_profiles_region(profile, settings):
    settings.AWS_REGION = "ap-south-1"
    aws_client.reset()

    assert aws_client.client("sqs").meta.region_name == "ap-south-1"
    assert aws_client.region() == "ap-south-1"


def test_us_east_1_is_used_only_when_nothing_names_a_region(profile, settings):
    settings.AWS_PROFILE = ""  # the [default] profile has no region
    aws_client.reset()

    assert aws_client.client("sqs").meta.region_name == "us-east-1"
    assert aws_client.region() == "us-east-1"


def test_an_unknown_profile_does_not_break_showing_the_region(profile, settings):
    settings.AWS_PROFILE = "no-such-profile"
    aws_client.reset()

    assert aws_client.region() == "us-east-1"


def test_the_bulk_client_is_lean_and_the_ordinary_one_validates(settings):
    """The redrive's message calls skip client-side validation and the adaptive limiter."""
    settings.AWS_ENDPOINT_URL = ""
    aws_client.reset()
    ordinary, bulk = aws_client.client("sqs"), aws_client.client("sqs", bulk=True)
    assert ordinary is not bulk
    assert aws_client.client("sqs", bulk=True) is bulk
    # botocore's meta.config always says parameter_validation=True; the serializer tells.
    assert isinstance(ordinary._serializer, ParamValidationDecorator)
    assert not isinstance(bulk._serializer, ParamValidationDecorator)
    assert ordinary.meta.config.retries["mode"] == "adaptive"
    assert bulk.meta.config.retries["mode"] == "standard"
    aws_client.reset()
