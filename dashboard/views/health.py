"""``/healthz``: database, cache and broker reachability, for load balancers and humans."""

from __future__ import annotations

import logging
import os
import time
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


CHECKS: dict[str, Callable[[], None]] = {"database": _database, "cache": _cache, "broker": _broker}


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure means "down"; say why
            logger.warning("healthz: %s is down: %s", name, exc)
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    healthy = all(result["ok"] for result in results.values())
    return JsonResponse({"ok": healthy, "checks": results}, status=200 if healthy else 503)
