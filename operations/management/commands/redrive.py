"""``manage.py redrive QUEUE``: the same redrive Operation as the UI, from a shell."""

from __future__ import annotations

import getpass
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from operations import dlq
from operations import redrive as engine
from operations.aws import sqs
from operations.aws.errors import AwsError


class Command(BaseCommand):
    help = "Redrive a DLQ (all of it or a filtered subset) back to its source queue."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("queue", help="DLQ name or URL")
        parser.add_argument("--event-type", default="")
        parser.add_argument("--correlation-id", default="")
        parser.add_argument("--contains", default="", help="text the body must contain")
        parser.add_argument("--max", type=int, default=None, help="move at most N messages")
        parser.add_argument("--rate", type=float, default=None, help="messages per second")
        parser.add_argument("--destination", default="", help="source queue ARN (if several)")
        parser.add_argument("--dry-run", action="store_true", help="preview only")
        parser.add_argument("--reason", default="", help="why (recorded)")
        parser.add_argument("--yes", action="store_true", help="really start it")
        parser.add_argument("--wait", action="store_true", help="run here, without a worker")

    def handle(self, *args: Any, **options: Any) -> None:
        filters = dlq.Filters(
            event_type=options["event_type"],
            correlation_id=options["correlation_id"],
            contains=options["contains"],
        )
        if options["max"] is not None and options["max"] < 1:
            raise CommandError("--max must be at least 1")
        if options["rate"] is not None and not 0 < options["rate"] <= 500:
            raise CommandError("--rate must be between 0 and 500 messages per second")
        try:
            url = self._url(options["queue"])
            if options["dry_run"]:
                self._preview(url, filters)
                return
            if not options["yes"]:
                raise CommandError("Refusing to redrive without --yes (try --dry-run first).")
            params = engine.RedriveParams(
                filters=filters,
                max_messages=options["max"],
                rate=options["rate"],
                destination_arn=self._destination(url, options["destination"]),
                dlq_arn=sqs.queue_attributes(url).arn,
            )
        except AwsError as exc:
            raise CommandError(str(exc)) from exc
        self._start(url, params, options)

    def _start(self, url: str, params: engine.RedriveParams, options: dict[str, Any]) -> None:
        reason = options["reason"] or "command line redrive"
        request = engine.StartRequest(url, params, reason, None, f"cli:{getpass.getuser()}")
        if options["wait"]:
            try:
                op = engine.create(request)
            except IntegrityError as exc:
                raise CommandError(self._busy(url)) from exc
            op = engine.run_inline(op)
            self.stdout.write(f"operation #{op.pk}: {op.state}")
            self.stdout.write(f"moved={op.moved} failed={op.failed} skipped={op.skipped}")
            return
        try:
            op = engine.start(request)
        except IntegrityError as exc:
            raise CommandError(self._busy(url)) from exc
        self.stdout.write(f"operation #{op.pk} queued; a worker runs it.")

    def _url(self, queue: str) -> str:
        """The queue's URL as GetQueueUrl spells it, whatever form was typed, so the
        one-active-operation-per-DLQ constraint and loop detection see one target."""
        if queue.startswith(("https://", "http://")):
            return sqs.queue_url_for_arn(sqs.queue_attributes(queue).arn)
        return sqs.queue_url(queue)

    def _destination(self, url: str, chosen: str) -> str:
        sources = [sqs.queue_attributes(u).arn for u in sqs.dead_letter_source_queue_urls(url)]
        if chosen:
            if chosen not in sources:
                raise CommandError(f"--destination must be one of the DLQ's sources: {sources}")
            return chosen
        return sources[0] if len(sources) == 1 else ""

    def _preview(self, url: str, filters: dlq.Filters) -> None:
        preview = dlq.preview(url, filters)
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
