"""``python manage.py devstack``: the local emulator with live traffic (infra/devstack/)."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from infra.devstack import main as devstack
from infra.devstack.emulator import MotoIncompatible


class Command(BaseCommand):
    help = (
        "Start a moto server on 127.0.0.1:PORT with the eventops topology provisioned, the "
        "Lambda handlers running in-process and simulated traffic (orders, poison messages, "
        "transient errors). Stop with Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        devstack.build_parser(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            settings = devstack.options_from(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        try:
            code = devstack.run(settings, out=self.stdout)
        except MotoIncompatible as exc:
            # One line, no traceback: the fix is the moto version, not this code path.
            raise CommandError(f"devstack cannot start: {exc}") from None
        self.stdout.flush()
        devstack.exit_now(code)
