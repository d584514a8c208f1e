#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    from django.core.management import execute_from_command_line

    from dashboard.startup import configuration_errors_in_one_line

    # A bad setting or environments file: one line that names it, not a traceback.
    with configuration_errors_in_one_line():
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
