"""Alarm history kept without anyone looking: where no SNS subscription delivers alarm
changes to ``/hooks/sns`` (``EVENTOPS_SNS_TOPIC_ARNS`` empty), Celery beat calls ``poll``
every minute: one DescribeAlarmHistory (all alarms) per environment over the last few
minutes, recorded as ``AlarmTransition`` rows (the unique constraint drops repeats)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from operations import alarms, environments
from operations.aws import cloudwatch
from operations.aws.errors import AwsError

logger = logging.getLogger(__name__)
# Each poll looks this far back, so a late or skipped run loses nothing.
LOOKBACK = timedelta(minutes=5)


def subscribed() -> bool:
    from operations.sns_messages import configured_topics

    return bool(configured_topics())


def poll() -> int:
    """Record the recent alarm changes of every environment; returns how many were seen.
    Does nothing when the SNS subscription delivers them."""
    if subscribed():
        return 0
    end = timezone.now()
    seen = 0
    for environment in environments.all_environments():
        with environments.activate(environment):
            try:
                items = cloudwatch.describe_alarm_history("", end - LOOKBACK, end)
            except AwsError as exc:
                logger.warning("alarm history of %s: %s", environment.name, exc)
                continue
            changes = [item for item in items if item.new_state]
            alarms.record_history(changes)  # recorded as this environment's
        seen += len(changes)
    return seen
