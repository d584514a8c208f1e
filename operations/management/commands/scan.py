"""``manage.py scan DLQ [--max N] [--wait]``: the same scan Operation as the "Scan all" button.

It reads up to ``--max`` (at most ``EVENTOPS_SCAN_MAX``) messages, stores a masked row per
message and groups them by their error; it never deletes or moves anything, and every message
is visible again when it ends. Exit codes as ``manage.py redrive``: 0 done (or queued without
``--wait``), 1 failed or AWS unreachable, 2 refused, 3 partly done, 4 cancelled.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from operations import access, dlq_sources
from operations import redrive as engine
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.management import environment
from operations.management.commands.redrive import EXIT_CODES, FAILED, refused
from operations.triage import scan


class Command(BaseCommand):
    help = "Scan a DLQ: store one masked row per message, grouped by error (moves nothing)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("queue", help="DLQ name")
        parser.add_argument(
            "--max", type=int, default=None, help="read at most N messages (EVENTOPS_SCAN_MAX)"
        )
        parser.add_argument("--reason", default="", help="why (recorded)")
        parser.add_argument("--wait", action="store_true", help="run here, without a worker")
        environment.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["max"] is not None and options["max"] < 1:
            raise refused("--max must be at least 1")
        with environment.activated(options) as (env, identity):
            environment.require(env, identity, access.Action.VIEW_BODIES)
            try:
                url = sqs.queue_url(options["queue"])
                if not dlq_sources.is_dead_letter_queue(sqs.queue_attributes(url)):
                    raise refused(f"{options['queue']} is not a dead-letter queue.")
                self._scan(url, options, f"cli:{identity}")
            except AwsError as exc:
                code = 2 if exc.not_found else FAILED
                raise CommandError(str(exc), returncode=code) from exc

    def _scan(self, url: str, options: dict[str, Any], who: str) -> None:
        kwargs = {"max_messages": options["max"], "reason": options["reason"] or "command line"}
        try:
            if not options["wait"]:
                op = scan.start_scan(url, user_name=who, **kwargs)
                self.stdout.write(f"scan #{op.pk} queued; a worker runs it.")
                return
            op = scan.create_scan(url, user_name=who, **kwargs)
        except IntegrityError as exc:
            running = engine.active_operation(url)
            which = f" (#{running.pk})" if running else ""
            raise refused(f"Another operation is already active on {url}{which}.") from exc
        token = op.claim(scan.LEASE_SECONDS)
        if token is not None:
            scan.run_scan(op, token)
        op.refresh_from_db()
        outcome = op.outcome or {}
        self.stdout.write(
            f"scan #{op.pk}: {op.state}, {op.moved} messages of about "
            f"{outcome.get('approximate_total', '?')} ({outcome.get('stopped', '')})"
        )
        if op.error:
            self.stdout.write(f"  error: {op.error}")
        code = EXIT_CODES.get(op.state, FAILED)
        if code:
            raise CommandError(f"scan #{op.pk} ended {op.state}", returncode=code)
