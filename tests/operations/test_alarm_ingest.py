"""Alarm history polling (no SNS subscription): one DescribeAlarmHistory per environment,
recorded once however often the window is read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from botocore.stub import ANY, Stubber

from operations import alarm_ingest
from operations.models import AlarmTransition
from tests.conftest import _stubbed

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def cloudwatch_stub() -> Iterator[Stubber]:
    yield from _stubbed("cloudwatch")


def history_item(name: str, new: str, at: datetime) -> dict[str, Any]:
    data = {
        "oldState": {"stateValue": "OK"},
        "newState": {"stateValue": new, "stateReason": "Threshold crossed"},
    }
    return {
        "AlarmName": name,
        "Timestamp": at,
        "HistoryItemType": "StateUpdate",
        "HistorySummary": f"Alarm updated from OK to {new}",
        "HistoryData": json.dumps(data),
    }


def expect(stub: Stubber, items: list[dict[str, Any]]) -> None:
    stub.add_response(
        "describe_alarm_history",
        {"AlarmHistoryItems": items},
        {
            "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
            "HistoryItemType": "StateUpdate",
            "StartDate": datetime(2026, 5, 1, 11, 55, tzinfo=UTC),
            "EndDate": ANY,
            "MaxRecords": 100,
            "ScanBy": "TimestampDescending",
        },
    )


def test_poll_records_every_alarms_changes_once(cloudwatch_stub: Stubber, settings: Any) -> None:
    settings.EVENTOPS_SNS_TOPIC_ARNS = []
    items = [history_item("orders-dlq", "ALARM", datetime(2026, 5, 1, 11, 58, tzinfo=UTC))]
    expect(cloudwatch_stub, items)
    expect(cloudwatch_stub, items)
    with time_machine.travel(NOW, tick=False):
        alarm_ingest.poll()
        alarm_ingest.poll()
    row = AlarmTransition.objects.get()
    assert (row.alarm_name, row.old_state, row.new_state) == ("orders-dlq", "OK", "ALARM")


def test_poll_does_nothing_when_sns_delivers(cloudwatch_stub: Stubber, settings: Any) -> None:
    settings.EVENTOPS_SNS_TOPIC_ARNS = ["arn:aws:sns:us-east-1:123456789012:alarms"]
    assert alarm_ingest.poll() == 0 and not AlarmTransition.objects.exists()


def test_an_aws_error_is_logged_not_raised(cloudwatch_stub: Stubber, settings: Any) -> None:
    settings.EVENTOPS_SNS_TOPIC_ARNS = []
    cloudwatch_stub.add_client_error("describe_alarm_history", "Throttling", http_status_code=400)
    assert alarm_ingest.poll() == 0


@pytest.fixture
def two_environments(tmp_path: Any, settings: Any) -> Iterator[None]:
    from operations import environments

    path = tmp_path / "environments.toml"
    path.write_text(
        '[environments.prod]\nregion = "eu-west-1"\n[environments.staging]\nregion = "us-west-2"\n'
    )
    settings.EVENTOPS_ENVIRONMENTS_FILE = str(path)
    environments.reset()
    yield
    environments.reset()


def test_the_same_alarm_name_in_two_environments_keeps_two_histories(
    two_environments: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operations import alarms, environments
    from operations.aws import cloudwatch

    at = datetime(2026, 5, 1, 11, 58, tzinfo=UTC)
    item = cloudwatch.AlarmHistoryItem("orders-dlq", at, "StateUpdate", "", "OK", "ALARM", "x")
    prod, staging = environments.get("prod"), environments.get("staging")
    assert prod is not None and staging is not None
    for environment in (prod, staging):
        with environments.activate(environment):
            alarms.record_history([item])
    # An SNS message whose Region matches one environment is that environment's.
    assert environments.name_for_arn("arn:aws:cloudwatch:us-west-2:1:alarm:orders-dlq") == (
        "staging"
    )
    assert environments.name_for_arn("arn:aws:cloudwatch:ap-south-1:1:alarm:x") == ""
    AlarmTransition.objects.create(
        environment="staging", alarm_name="orders-dlq", new_state="OK", changed_at=NOW
    )

    monkeypatch.setattr(cloudwatch, "describe_alarm_history", lambda *a, **k: [])
    alarm = cloudwatch.Alarm("orders-dlq", "", "metric", "ALARM", "", None, True)
    with environments.activate(prod):
        shown_prod, _ = alarms.history(alarm)
    with environments.activate(staging):
        shown_staging, _ = alarms.history(alarm)
    assert [e.new_state for e in shown_prod] == ["ALARM"]
    assert [e.new_state for e in shown_staging] == ["OK", "ALARM"]
    assert AlarmTransition.objects.filter(alarm_name="orders-dlq").count() == 3
