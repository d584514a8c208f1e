"""Replay a window of an EventBridge archive, through the same Operation path as the UI.

    python manage.py replay ARCHIVE --start ISO --end ISO [--rule NAME ...]
        [--reason TEXT] --yes [--wait]

Without ``--yes`` it prints the preview and starts nothing. With ``--wait`` it
runs the replay inline (no worker needed) and ends printing the final state.
Interrupted (Ctrl-C) while waiting, it hands the replay over to a Celery worker,
which keeps polling it; when the task cannot be enqueued it cancels the replay
instead. Either way it says which, and the row never stays running unwatched.
"""

from __future__ import annotations

import getpass
import logging
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from operations import archive as reads
from operations import replay
from operations.archive import QueryTimedOut
from operations.aws.errors import AwsError
from operations.models import Operation
from operations.replay_tasks import replay as replay_task
from operations.replay_tasks import run_replay

logger = logging.getLogger(__name__)


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"{value!r} is not an ISO 8601 time (2024-05-01T12:00:00Z).") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Replay a time window of an EventBridge archive onto its bus (audited as an Operation)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", help="archive name")
        parser.add_argument(
            "--start", required=True, help="window start, ISO 8601 (UTC if no zone)"
        )
        parser.add_argument("--end", required=True, help="window end, ISO 8601 (UTC if no zone)")
        parser.add_argument(
            "--rule", action="append", default=[], help="limit to this rule (repeatable)"
        )
        parser.add_argument("--reason", default="", help="why (goes into the audit trail)")
        parser.add_argument("--yes", action="store_true", help="really start the replay")
        parser.add_argument("--wait", action="store_true", help="run inline until it ends")

    def handle(self, *args: Any, **options: Any) -> None:
        user = f"cli:{getpass.getuser()}"
        try:
            view = reads.load_archive(options["archive"])
            plan = replay.plan_replay(
                view, _time(options["start"]), _time(options["end"]), options["rule"]
            )
            for warning in plan.warnings:
                self.stderr.write(f"warning: {warning}")
            if not options["yes"]:
                self._print_preview(replay.preview(plan))
                raise CommandError("Nothing started: add --yes to start the replay.")
            op = replay.start_replay_operation(
                plan,
                reason=options["reason"] or f"Replay from the command line by {user}",
                requested_by_name=user,
                enqueue=not options["wait"],
            )
        except reads.ArchiveNotFound:
            raise CommandError(f"No archive named {options['archive']!r}.") from None
        except (replay.ReplayRequestError, QueryTimedOut, AwsError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"operation #{op.pk}: replay {op.parameters['replay_name']}")
        if options["wait"]:
            self._run_inline(op)

    def _print_preview(self, preview: replay.Preview) -> None:
        more = "at least " if preview.truncated else ""
        self.stdout.write(f"{more}{preview.total} events in the window; {preview.delivered} match")
        for detail_type, count in preview.by_detail_type:
            self.stdout.write(f"  {detail_type}: {count}")
        for rule, count in preview.by_rule:
            self.stdout.write(f"  rule {rule}: {count}")
        for consumer, count in preview.idempotency.skipped_by_consumer.items():
            self.stdout.write(f"  {consumer} will skip {count} (unexpired idempotency record)")

    def _run_inline(self, op: Operation) -> None:
        token = op.claim()
        if token is None:
            raise CommandError(f"Operation #{op.pk} is held by a worker.")
        try:
            while not run_replay(op, token):
                op.refresh_from_db()
                state, percent = op.progress.get("state", ""), op.progress.get("percent", 0)
                self.stdout.write(f"  {state} {percent}%")
        except KeyboardInterrupt:
            self._hand_over(op, token)
            return
        op.refresh_from_db()
        state = op.progress.get("state", "")
        self.stdout.write(f"final state: {op.state} (replay {state or 'not started'})")
        if op.error:
            self.stdout.write(f"error: {op.error}")
        if op.state != Operation.State.SUCCEEDED:
            raise CommandError(f"Replay operation #{op.pk} ended {op.state}.")

    def _hand_over(self, op: Operation, token: Any) -> None:
        """Interrupted: a worker keeps polling the replay, or else the replay is cancelled."""
        try:
            # The worker's task claims the row once this command's lease expires.
            replay_task.delay(op.pk)
        except Exception as exc:
            logger.warning("Could not enqueue replay operation %s: %s", op.pk, exc)
            replay.cancel_replay_operation(op)
            op.finish(
                token,
                Operation.State.CANCELLED,
                error=f"Cancelled: the command was interrupted and no worker could take over "
                f"({type(exc).__name__}: {exc}).",
            )
            self.stdout.write(
                f"interrupted: could not hand operation #{op.pk} to a worker ({exc}); "
                "the replay was cancelled."
            )
            raise CommandError(f"Replay operation #{op.pk} was cancelled.") from None
        self.stdout.write(
            f"interrupted: operation #{op.pk} was handed to a Celery worker, which keeps "
            "polling the replay (it resumes within two minutes). Cancel it from the "
            f"operation's page or with CancelReplay {op.parameters['replay_name']}."
        )
