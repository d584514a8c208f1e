"""``/healthz``: database, cache and broker reachability, for load balancers and humans.

It needs no login, so it says each component's state (``ok``, ``error``, ``unconfigured``)
and nothing else: why a component is down goes to the server's log, never to the page
(exception text can name hosts, paths and users)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    key = f"healthz:{uuid.uuid4().hex}"
    cache.set(key, "ok", timeout=5)
    if cache.get(key) != "ok":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)


# Folders kombu's filesystem transport reads and writes (processed only if it keeps them).
FILESYSTEM_FOLDERS = ("data_folder_in", "data_folder_out", "control_folder")


def _filesystem_folders(options: dict[str, object]) -> None:
    """The filesystem transport "connects" even to folders that do not exist, and then
    loses every message: check that each folder it uses exists and is writable."""
    names = list(FILESYSTEM_FOLDERS)
    if options.get("store_processed"):
        names.append("processed_folder")
    for name in names:
        folder = options.get(name)
        if not folder:
            continue
        path = Path(str(folder))
        if not path.is_dir():
            raise RuntimeError(f"broker folder {name} does not exist: {path}")
        if not os.access(path, os.W_OK | os.X_OK):
            raise RuntimeError(f"broker folder {name} is not writable: {path}")


def _broker() -> None:
    from dashboard.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        if conn.transport.driver_type == "filesystem":
            _filesystem_folders(dict(app.conf.broker_transport_options or {}))


class Unconfigured(Exception):
    """A component this installation does not use (not a failure)."""


def _single_sign_on() -> None:
    """The provider's endpoints are known (its discovery document, fetched once)."""
    from dashboard import oidc

    if not oidc.enabled():
        raise Unconfigured
    if not oidc.provider_setting("OIDC_OP_AUTHORIZATION_ENDPOINT"):
        raise RuntimeError("the provider names no authorization endpoint")


CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "cache": _cache,
    "broker": _broker,
    "single_sign_on": _single_sign_on,
}
OK, ERROR, UNCONFIGURED = "ok", "error", "unconfigured"


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    states: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Unconfigured:
            states[name] = UNCONFIGURED
        except Exception:  # any failure means "down"; the log says why, the page does not
            logger.exception("healthz: %s is down", name)
            states[name] = ERROR
        else:
            states[name] = OK
    healthy = ERROR not in states.values()
    return JsonResponse({"ok": healthy, "checks": states}, status=200 if healthy else 503)
