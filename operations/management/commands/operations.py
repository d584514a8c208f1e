"""``manage.py operations sweep|list|cancel|set-rate``: the operations, from a shell or cron.

    python manage.py operations sweep                 # once: what Celery beat does every minute
    python manage.py operations list [--active] [--limit N]
    python manage.py operations cancel ID --reason TEXT
    python manage.py operations set-rate ID RATE      # messages/s; "none" lifts the limit

``cancel`` is refused (exit 2) in read-only mode (``EVENTOPS_READ_ONLY``); ``sweep`` is
not: it only resumes operations accepted before. ``cancel`` exits 0 when the cancel was
taken (the operation ended, or stops as soon as its task or AWS confirms), 1 when AWS
refused to cancel an operation whose worker had stopped (it stays running, and says why),
2 when there is nothing to cancel (no such operation, or it had already finished) or the
usage is wrong. ``set-rate`` changes the rate limit of a running client-side redrive (its worker
applies it within a second; who and when are recorded): 0, or 2 when it is refused (no
such active redrive, a bad rate, read-only mode).
"""

from __future__ import annotations

import getpass
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from operations import access, cancel, outcomes, redrive_parts, sweep
from operations.management import environment
from operations.models import Operation
from operations.redrive_rate import RateError, parse_rate, set_rate


class Command(BaseCommand):
    help = "Sweep, list or cancel operations (the audit rows of redrives, replays, ...)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser(
            "sweep",
            help="re-enqueue operations pending for over a minute, resume abandoned ones",
        )
        listing = actions.add_parser("list", help="the newest operations")
        listing.add_argument("--active", action="store_true", help="only pending and running")
        listing.add_argument("--limit", type=int, default=20)
        cancelling = actions.add_parser("cancel", help="ask an operation to stop")
        cancelling.add_argument("id", type=int)
        cancelling.add_argument("--reason", required=True, help="why (recorded)")
        rating = actions.add_parser("set-rate", help="change a running redrive's rate limit")
        rating.add_argument("id", type=int)
        rating.add_argument("rate", help='messages per second; "none" lifts the limit')

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "sweep":
            self._sweep()
        elif action == "list":
            self._list(options["active"], options["limit"])
        elif action == "set-rate":
            self._set_rate(options["id"], options["rate"])
        else:
            self._cancel(options["id"], options["reason"])

    def _sweep(self) -> None:
        report = sweep.run()
        self.stdout.write(
            f"re-enqueued {len(report.requeued)} pending, resumed {len(report.resumed)} "
            f"abandoned, could not enqueue {len(report.unsent)}"
            + (f", ended {len(report.finished)} split redrives" if report.finished else "")
        )
        if report.unsent:
            raise CommandError(
                f"The task queue refused operations {report.unsent}.",
                returncode=outcomes.EXIT_FAILED,
            )

    def _list(self, active: bool, limit: int) -> None:
        # A redrive split across workers is one line (its parts' sums), its parts under it.
        rows = Operation.objects.filter(parent__isnull=True)
        if active:
            rows = rows.filter(state__in=Operation.ACTIVE_STATES)
        for op in rows[: max(1, limit)]:
            redrive_parts.live_totals(op)  # a running split redrive: its parts' sums
            note = f"  [{op.cancel_note}]" if op.cancel_requested and op.is_active else ""
            self.stdout.write(
                f"#{op.pk}\t{op.kind}\t{op.state}\t{op.target_label or op.target}\t"
                f"moved={op.moved} failed={op.failed}\t{op.requested_by_name}{note}"
            )
            for part in redrive_parts.part_rows(op):
                self.stdout.write(
                    f"  #{part.pk}\tpart {part.part} of #{op.pk}\t{part.state}\t"
                    f"moved={part.moved} failed={part.failed}"
                )

    def _cancel(self, pk: int, reason: str) -> None:
        environment.refuse_in_read_only()
        if not reason.strip():
            raise CommandError("--reason must say why.", returncode=outcomes.EXIT_REFUSED)
        op = Operation.objects.filter(pk=pk).first()
        if op is None:
            raise CommandError(f"No operation #{pk}.", returncode=outcomes.EXIT_REFUSED)
        result = cancel.cancel(op, by=f"cli:{getpass.getuser()}", reason=reason.strip())
        self.stdout.write(result.message)
        if result.status == cancel.REFUSED:
            raise CommandError(result.message, returncode=outcomes.EXIT_FAILED)
        if result.status == cancel.FINISHED:
            raise CommandError(result.message, returncode=outcomes.EXIT_REFUSED)

    def _set_rate(self, pk: int, value: str) -> None:
        if access.read_only():
            raise CommandError(
                "Refused: the dashboard is in read-only mode (EVENTOPS_READ_ONLY).",
                returncode=outcomes.EXIT_REFUSED,
            )
        try:
            rate = parse_rate(value)
        except RateError as exc:
            raise CommandError(f"Refused: {exc}.", returncode=outcomes.EXIT_REFUSED) from exc
        if not set_rate(pk, rate, by=f"cli:{getpass.getuser()}"):
            raise CommandError(
                f"No running client-side redrive #{pk}.", returncode=outcomes.EXIT_REFUSED
            )
        limit = f"{rate:g} messages/s" if rate else "no limit"
        self.stdout.write(
            f"#{pk}: rate limit set to {limit}; the worker applies it within a second."
        )
