"""``python manage.py trace ID [--since 6h] [--json]``: the correlation page's timeline."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from operations import correlation
from operations.correlation import InvalidLookup
from operations.correlation_shown import masked_timeline
from operations.management import environment


class Command(BaseCommand):
    help = (
        "Print everything known about a correlation ID, X-Ray trace ID or event ID: "
        "traces, events, DLQ messages, idempotency and outbox records, operations."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help="correlation ID, X-Ray or W3C trace ID, or event ID")
        parser.add_argument(
            "--since",
            default=correlation.DEFAULT_SINCE,
            help="how far back to look: 30m, 6h, 3d... (default 6h, at most 30d)",
        )
        parser.add_argument("--json", action="store_true", help="print JSON")
        environment.add_arguments(parser)
        environment.add_unmasked_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        with environment.activated(options) as (env, identity):
            masked = environment.must_mask(options, env, identity)
            built = self._handle(options, masked)
            if built is not None:
                dlq_panel = built.panels.get("dlq")
                count = len(dlq_panel.rows) if dlq_panel else 0
                target = f"trace {built.correlation_id}"
                environment.record_read(env, identity, target, count, masked=masked)

    def _handle(self, options: dict[str, Any], masked: bool) -> correlation.Timeline | None:
        try:
            lookup = correlation.parse_lookup(options["id"])
            since = correlation.parse_since(options["since"])
        except InvalidLookup as exc:
            raise CommandError(str(exc)) from None
        built = correlation.timeline(lookup, since)
        if masked:
            built = masked_timeline(built)
        if options["json"]:
            self.stdout.write(json.dumps(built.as_json(), indent=2))
            return built
        self.stdout.write(
            f"{lookup.kind_label} {lookup.value} -> correlation ID {built.correlation_id}"
            f" (last {options['since']})"
        )
        for key, found in built.panels.items():
            status = f"{len(found.rows)} found"
            if found.error:
                label = "stale: " if found.stale else "error: "
                status += f", {label}{found.command_error or found.error}"
            self.stdout.write(f"  {found.title} [{key}]: {status}")
            for note in found.notes:
                self.stdout.write(f"    note: {note}")
        self.stdout.write("")
        for entry in built.entries:
            when = entry.at.strftime("%Y-%m-%d %H:%M:%S") if entry.at else "-" * 19
            state = f" [{entry.state}]" if entry.state else ""
            line = f"{when}  {entry.source:<12} {entry.title}{state}"
            if entry.detail:
                line += f"  ({entry.detail})"
            self.stdout.write(line)
        if not built.entries:
            self.stdout.write("Nothing found.")
        return built
