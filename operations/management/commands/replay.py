"""Replay a window of an EventBridge archive, through the same Operation path as the UI.

    python manage.py replay ARCHIVE --start ISO --end ISO [--rule NAME ...]
        [--reason TEXT] --yes [--wait]

Without ``--yes`` it prints the preview and starts nothing. With ``--wait`` it
runs the replay inline (no worker needed) and ends printing the final state.
Interrupted (Ctrl-C) while waiting, it hands the replay over to a Celery worker,
which keeps polling it; when the task cannot be enqueued it cancels the replay
instead. Either way it says which, and the row never stays running unwatched.

Exit codes (``operations.outcomes``, README "Command line"): 0 succeeded, 1 failed,
2 refused or bad usage, 4 cancelled, 5 still running or handed to a worker (also
without ``--wait``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from operations import access, enqueue, explain, outcomes, replay
from operations import archive as reads
from operations.archive import QueryTimedOut
from operations.aws import events
from operations.aws.errors import AwsError
from operations.management import environment
from operations.models import Operation
from operations.replay_tasks import run_replay


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
        environment.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        with environment.activated(options) as (env, identity):
            if options["yes"]:
                environment.require(env, identity, access.Action.REPLAY)
            self._handle(options, f"cli:{identity}")

    def _handle(self, options: dict[str, Any], user: str) -> None:
        try:
            view = reads.load_archive(options["archive"])
            plan = replay.plan_replay(
                view, _time(options["start"]), _time(options["end"]), options["rule"]
            )
            for warning in plan.warnings:
                self.stderr.write(f"warning: {warning}")
            if not options["yes"]:
                self._print_preview(replay.preview(plan))
                raise _refused("Nothing started: add --yes to start the replay.")
            op = replay.start_replay_operation(
                plan,
                reason=options["reason"] or f"Replay from the command line by {user}",
                requested_by_name=user,
                enqueue=not options["wait"],
            )
        except reads.ArchiveNotFound:
            raise _refused(f"No archive named {options['archive']!r}.") from None
        except (replay.ReplayRequestError, QueryTimedOut) as exc:
            raise _refused(str(exc)) from None
        except AwsError as exc:
            text = explain.describe(exc, command=True)
            raise CommandError(text, returncode=outcomes.EXIT_FAILED) from None
        except enqueue.QueueUnavailable as exc:
            raise CommandError(str(exc), returncode=outcomes.EXIT_FAILED) from None
        self.stdout.write(f"operation #{op.pk}: replay {op.parameters['replay_name']}")
        if not options["wait"]:
            raise CommandError(
                f"Replay operation #{op.pk} was handed to a Celery worker; follow it on its "
                "page or with `manage.py operations list`.",
                returncode=outcomes.EXIT_RUNNING,
            )
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
            raise CommandError(
                f"Operation #{op.pk} is held by a worker.", returncode=outcomes.EXIT_RUNNING
            )
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
        for line in outcomes.reason_lines(op.outcome):
            self.stdout.write(f"  {line}")
        code = outcomes.exit_code(op.state)
        if code:
            raise CommandError(f"Replay operation #{op.pk} ended {op.state}.", returncode=code)

    def _hand_over(self, op: Operation, token: Any) -> None:
        """Interrupted: a worker keeps polling the replay, or else the replay is cancelled
        (or, when even that fails, left to the sweeper once the broker is back)."""
        # The worker's task claims the row once this command's lease expires.
        if enqueue.send(op):
            self.stdout.write(
                f"interrupted: operation #{op.pk} was handed to a Celery worker, which keeps "
                "polling the replay (it resumes within two minutes). Cancel it from the "
                f"operation's page or with `manage.py operations cancel {op.pk}`."
            )
            raise CommandError(
                f"Replay operation #{op.pk} is running.", returncode=outcomes.EXIT_RUNNING
            )
        name = str(op.parameters["replay_name"])
        try:
            events.cancel_replay(name)
        except AwsError as exc:
            if not exc.not_found:
                self.stdout.write(
                    f"interrupted: could not hand operation #{op.pk} to a worker, nor cancel "
                    f"the replay ({exc}); it stays running, and the sweeper resumes it once "
                    "the task queue is back."
                )
                raise CommandError(
                    f"Replay operation #{op.pk} is running unwatched.",
                    returncode=outcomes.EXIT_RUNNING,
                ) from None
        op.finish(
            token,
            Operation.State.CANCELLED,
            error="Cancelled: the command was interrupted and no worker could take over "
            "(the task queue is unreachable).",
            cancel_requested=True,
            cancel_requested_by=op.requested_by_name,
            cancel_requested_at=timezone.now(),
            cancel_reason="the command was interrupted (Ctrl-C)",
        )
        self.stdout.write(
            f"interrupted: could not hand operation #{op.pk} to a worker; the replay was cancelled."
        )
        raise CommandError(
            f"Replay operation #{op.pk} was cancelled.", returncode=outcomes.EXIT_CANCELLED
        )


def _refused(message: str) -> CommandError:
    return CommandError(message, returncode=outcomes.EXIT_REFUSED)
