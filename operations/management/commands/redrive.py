"""``manage.py redrive QUEUE``: the same redrive Operation as the UI, from a shell.

It checks what the pages check before it receives anything: the queue must be a DLQ
(some queue names it in its RedrivePolicy), and a DLQ with several sources needs
``--destination``, one of them. Exit codes (README "Command line"): 0 the redrive
succeeded (or, without ``--wait``, was queued), 1 it failed or AWS could not be
reached, 2 refused (bad usage, not a DLQ, no such queue, another operation active),
3 partly done, 4 cancelled.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from operations import access, dlq, dlq_sources, explain, redrive_parts
from operations import redrive as engine
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.management import environment
from operations.models import Operation

FAILED = 1
REFUSED = 2
EXIT_CODES: dict[str, int] = {
    Operation.State.SUCCEEDED: 0,
    Operation.State.FAILED: FAILED,
    Operation.State.PARTIAL: 3,
    Operation.State.CANCELLED: 4,
}


def refused(message: str) -> CommandError:
    return CommandError(message, returncode=REFUSED)


class Command(BaseCommand):
    help = "Redrive a DLQ (all of it or a filtered subset) back to its source queue."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("queue", help="DLQ name or URL")
        parser.add_argument("--event-type", default="")
        parser.add_argument("--correlation-id", default="")
        parser.add_argument("--contains", default="", help="text the body must contain")
        parser.add_argument(
            "--max", type=int, default=None, help="take on at most the first N matching messages"
        )
        parser.add_argument("--rate", type=float, default=None, help="messages per second")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="receive/send/delete pipelines at once (default EVENTOPS_REDRIVE_CONCURRENCY; "
            "FIFO: across message groups, each in order)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help=f"split the redrive across N Celery workers (1-{engine.MAX_WORKERS}; standard "
            "DLQs only, not with --wait)",
        )
        parser.add_argument(
            "--destination",
            default="",
            help="source queue (name or ARN) for messages that do not name theirs; "
            "required when the DLQ has several sources",
        )
        parser.add_argument("--dry-run", action="store_true", help="preview only")
        parser.add_argument("--reason", default="", help="why (recorded)")
        parser.add_argument("--yes", action="store_true", help="really start it")
        parser.add_argument("--wait", action="store_true", help="run here, without a worker")
        environment.add_arguments(parser)
        environment.add_unmasked_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        with environment.activated(options) as (env, identity):
            options["cli_identity"] = identity
            # Filters look at bodies as this person may see them (masked by default).
            options["masked"] = environment.must_mask(options, env, identity)
            if not options["dry_run"]:
                environment.require(env, identity, access.Action.REDRIVE)
            self._handle(options)

    def _handle(self, options: dict[str, Any]) -> None:
        filters = dlq.Filters(
            event_type=options["event_type"],
            correlation_id=options["correlation_id"],
            contains=options["contains"],
            masked=options["masked"],
        )
        if options["max"] is not None and options["max"] < 1:
            raise refused("--max must be at least 1")
        if options["rate"] is not None and not 0 < options["rate"] <= 500:
            raise refused("--rate must be between 0 and 500 messages per second")
        concurrency = options["concurrency"]
        if concurrency is not None and not 1 <= concurrency <= engine.MAX_CONCURRENCY:
            raise refused(f"--concurrency must be between 1 and {engine.MAX_CONCURRENCY}")
        workers = options["workers"]
        if not 1 <= workers <= engine.MAX_WORKERS:
            raise refused(f"--workers must be between 1 and {engine.MAX_WORKERS}")
        if workers > 1 and options["wait"]:
            raise refused(
                "--workers runs the redrive on Celery workers: drop --wait (follow it with "
                "`manage.py operations`), or use --concurrency for pipelines in this process."
            )
        try:
            url, arn = self._dlq(options["queue"])
            destination = dlq_sources.destination(url, options["destination"])
            if options["dry_run"]:
                self._preview(url, filters)
                return
            if not options["yes"]:
                raise refused("Refusing to redrive without --yes (try --dry-run first).")
            redrive_parts.check_workers(workers, dlq_url=url)
        except redrive_parts.WorkersError as exc:
            raise refused(f"--workers {workers}: {exc}.") from exc
        except dlq_sources.DestinationError as exc:
            raise refused(f"{exc} Use --destination.") from exc
        except AwsError as exc:
            raise CommandError(
                explain.describe(exc, command=True),
                returncode=REFUSED if exc.not_found else FAILED,
            ) from exc
        params = engine.RedriveParams(
            filters=filters,
            max_messages=options["max"],
            rate=options["rate"],
            concurrency=concurrency,
            workers=workers,
            destination_arn=destination,
            dlq_arn=arn,
        )
        self._start(url, params, options)

    def _dlq(self, queue: str) -> tuple[str, str]:
        """The DLQ's URL as GetQueueUrl spells it, whatever form was typed (so the
        one-active-operation-per-DLQ constraint and loop detection see one target), and its
        ARN. Refuses a queue that is not a DLQ: receiving from a live queue would raise its
        messages' receive counts and push healthy messages toward its own DLQ."""
        if queue.startswith(("https://", "http://")):
            url = sqs.queue_url_for_arn(sqs.queue_attributes(queue).arn)
        else:
            url = sqs.queue_url(queue)
        attributes = sqs.queue_attributes(url)
        if not dlq_sources.is_dead_letter_queue(attributes):
            raise refused(
                f"{attributes.name} is not a dead-letter queue: no queue sends it its failed "
                "messages. Refusing to receive from it."
            )
        return url, attributes.arn

    def _start(self, url: str, params: engine.RedriveParams, options: dict[str, Any]) -> None:
        reason = options["reason"] or "command line redrive"
        request = engine.StartRequest(url, params, reason, None, f"cli:{options['cli_identity']}")
        if not options["wait"]:
            try:
                op = engine.start(request)
            except IntegrityError as exc:
                raise refused(self._busy(url)) from exc
            if redrive_parts.has_parts(op):
                n = op.parameters["workers"]
                self.stdout.write(f"operation #{op.pk} queued in {n} parts; {n} workers run it.")
            else:
                self.stdout.write(f"operation #{op.pk} queued; a worker runs it.")
            return
        try:
            op = engine.create(request)
        except IntegrityError as exc:
            raise refused(self._busy(url)) from exc
        op = engine.run_inline(op, progress=self._progress)
        self.stdout.write(f"operation #{op.pk}: {op.state}")
        reasons = (op.outcome or {}).get("reasons") or {}
        for why, count in reasons.items():
            self.stdout.write(f"  {count} not moved: {why}")
        if op.error:
            self.stdout.write(f"  error: {op.error}")
        self.stdout.write(
            f"moved={op.moved} failed={op.failed} skipped={op.skipped} held_back={op.held_back}"
        )
        code = EXIT_CODES.get(op.state, FAILED)
        if code:
            raise CommandError(f"operation #{op.pk} ended {op.state}", returncode=code)

    def _progress(self, op: Operation) -> None:
        """A progress line, at most every few seconds while ``--wait`` runs it."""
        self.stdout.write(engine.progress_line(op))

    def _preview(self, url: str, filters: dlq.Filters) -> None:
        preview = dlq.preview(url, filters)
        if filters.masked:
            # Event types are printed as this person may see them.
            preview.by_event_type = dlq.group_by((m.masked for m in preview.matching), "event_type")
        self.stdout.write(
            f"{len(preview.matching)} of {preview.examined} examined messages match "
            f"(about {preview.queue_depth} in the queue)"
        )
        for group in preview.by_event_type:
            self.stdout.write(f"  {group.key}: {group.count}")

    def _busy(self, url: str) -> str:
        running = engine.active_operation(url)
        which = f" (#{running.pk})" if running else ""
        return f"Another operation is already active on {url}{which}."
