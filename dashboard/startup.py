"""A bad setting stops every entry point (manage.py, WSGI, ASGI) with one line naming it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from django.core.exceptions import ImproperlyConfigured


@contextlib.contextmanager
def configuration_errors_in_one_line() -> Iterator[None]:
    """``eventops: configuration error: <what>`` on stderr and exit status 2, not a traceback."""
    try:
        yield
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"eventops: configuration error: {exc}\n")
        sys.exit(2)
