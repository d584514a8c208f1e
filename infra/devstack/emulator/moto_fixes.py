"""Fixes of stock moto that a long-running devstack needs (not AWS features moto lacks).

1. moto keeps every model object it ever creates in a class-level list (``instances_tracked``,
   for its ``/moto-api/`` dashboard): every SQS message, stream record, trace segment and log
   event, and every table copy of a DynamoDB transaction, forever. That was most of the
   devstack's memory growth (about 1 GB a minute). Objects are no longer tracked, so moto's
   dashboard lists no models; the AWS APIs are unaffected.
2. Route requests without re-scanning moto's package on every call (see
   :func:`cache_request_routing`), and deliver events to targets without building a JSONPath
   parser for every path of every event (see :func:`cache_jsonpath_parsing`).
3. Give events delivered to rule targets the ``account`` field that AWS puts in every envelope.
4. Make SQS receives and deletes atomic (:func:`make_sqs_thread_safe`): moto's run
   unlocked, so two deletes at once (a redrive's pipelines) undo one another, a message
   sent meanwhile is lost, and receives at once fail or share a message.
5. Detach moto's own Lambda pollers, so that the devstack runner is the only consumer
   (:func:`detach_event_source_pollers`, called after provisioning; not a patch).

Everything goes through the emulator's :class:`~infra.devstack.emulator._patches.Patcher`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any

from infra.devstack.emulator._patches import Patcher

log = logging.getLogger(__name__)

# EventBridge's envelope as AWS delivers it to targets; moto's default template (what a target
# without an InputTransformer receives) leaves out "account", which the Powertools
# EventBridgeModel requires, so every event would be a poison message in the devstack.
EVENT_ENVELOPE_TEMPLATE = (
    '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
    '"account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>, '
    '"detail": <detail>}'
)


def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    """``BaseModel.__new__`` without appending the instance to ``cls.instances_tracked``."""
    return object.__new__(cls)


def stop_tracking_instances(patcher: Patcher) -> None:
    from moto.core.common_models import BaseModel

    patcher.setattr(BaseModel, "__new__", staticmethod(_untracked_new))


def add_account_to_event_envelope(patcher: Patcher) -> None:
    """Make moto's rule targets receive the ``account`` field."""
    from moto.events.utils import EventTemplateParser

    patcher.setattr(EventTemplateParser, "DEFAULT_EVENT_INPUT_TEMPLATE", EVENT_ENVELOPE_TEMPLATE)


def cache_request_routing(patcher: Patcher) -> None:
    """Memoize moto server's host -> service lookup.

    moto resolves the service of every request under one global lock, listing its package
    directory from disk and trying some 300 URL patterns each time. Under the devstack's load
    (hundreds of requests a second) that lock is where most request time goes. The mapping
    never changes while the server runs (the cache holds one entry per host name).
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    cache: dict[str | None, Any] = {}

    @functools.wraps(original)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        try:
            return cache[host]
        except KeyError:
            backend = original(self, host)
            if backend is not None:
                cache[host] = backend
            return backend

    patcher.setattr(
        DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host, requires=["host"]
    )


def cache_jsonpath_parsing(patcher: Patcher) -> None:
    """Memoize ``jsonpath_ng.ext.parse``, which moto calls for each input path of each target.

    Each call generates a new parser (PLY's yacc tables) before parsing ``$.detail``: a
    fifth of the emulator's CPU under the devstack's traffic. The same path always parses to
    the same expression, and ``find`` does not change it.
    """
    import jsonpath_ng.ext

    original = jsonpath_ng.ext.parse
    parsed = functools.lru_cache(maxsize=256)(original)

    @functools.wraps(original)
    def parse(path: str, debug: bool | None = None) -> Any:
        return original(path, debug) if debug else parsed(path)

    patcher.setattr(jsonpath_ng.ext, "parse", parse, requires=["path"])


# One lock for SQS's receives and deletes, in every queue: moto's run unlocked.
_SQS_LOCK = threading.RLock()
# A long poll's wait returned at once (visible messages it cannot take: FIFO groups in
# flight): poll again after this long, as moto's own loop would without pausing.
_LONG_POLL_PAUSE_S = 0.05


def make_sqs_thread_safe(patcher: Patcher) -> None:
    """Make moto's SQS receive and delete atomic, as SQS's are.

    moto runs them unlocked (``mock_aws`` in threads, and ``ThreadedMotoServer``'s threads):

    - a delete builds a new list of the queue's other messages and assigns it. Two deletes
      at once each start from the same old list, and the one assigned last puts back what
      the other deleted: the message stays in flight forever, its receipt handle already
      marked deleted. A message sent during a delete is dropped the same way.
    - a receive copies the set of FIFO groups in flight while another changes it
      ("Set changed size during iteration"), and can hand out a message another receive
      is taking.

    A redrive with several pipelines runs into both (with 8 threads deleting batches of 10,
    hundreds of 600 deletions were lost), and so would a consumer failing messages into a
    DLQ while an operator redrives it. Receives and deletes now hold one lock, and a delete
    also the queue's ``_messages_lock`` under which moto appends a sent message. A long poll
    waits outside the lock, woken by a send, as moto's own wait is.
    """
    from moto.sqs.models import Queue, SQSBackend

    original_delete = Queue.delete_message

    @functools.wraps(original_delete)
    def delete_message(self: Any, receipt_handle: str) -> None:
        with _SQS_LOCK, self._messages_lock:
            original_delete(self, receipt_handle)

    original_receive = SQSBackend.receive_message

    @functools.wraps(original_receive)
    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with _SQS_LOCK:
                result = original_receive(
                    self, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
            remaining = deadline - time.monotonic()
            if result or remaining <= 0:
                return result
            began = time.monotonic()
            self.get_queue(queue_name).wait_for_messages(min(1.0, remaining))
            if time.monotonic() - began < _LONG_POLL_PAUSE_S:
                time.sleep(min(_LONG_POLL_PAUSE_S, max(remaining, 0)))

    patcher.setattr(Queue, "delete_message", delete_message, requires=["receipt_handle"])
    patcher.setattr(
        SQSBackend,
        "receive_message",
        receive_message,
        requires=["queue_name", "count", "wait_seconds_timeout", "visibility_timeout"],
    )


def install(patcher: Patcher) -> None:
    stop_tracking_instances(patcher)
    make_sqs_thread_safe(patcher)
    add_account_to_event_envelope(patcher)
    cache_request_routing(patcher)
    cache_jsonpath_parsing(patcher)


def detach_event_source_pollers() -> int:
    """Unhook every event source mapping from moto's SQS queues and DynamoDB tables.

    With an event source mapping, moto calls the function itself when a message or stream
    record arrives: in Docker for SQS (it deletes the messages if the call "succeeds"), and for
    DynamoDB streams it even ignores ``Enabled`` and drops the stream records after the call.
    The devstack keeps the mappings (so ``ListEventSourceMappings`` shows consumers as on AWS)
    but unhooks them from moto's queues and tables; :mod:`infra.devstack.runner` polls instead.

    Returns how many hooks were removed.
    """
    from moto.dynamodb.models import dynamodb_backends
    from moto.sqs.models import sqs_backends

    removed = 0
    for sqs_accounts in sqs_backends.values():
        for sqs_backend in sqs_accounts.values():
            for queue in sqs_backend.queues.values():
                removed += len(queue.lambda_event_source_mappings)
                queue.lambda_event_source_mappings.clear()
    for dynamodb_accounts in dynamodb_backends.values():
        for dynamodb_backend in dynamodb_accounts.values():
            for table in dynamodb_backend.tables.values():
                hooks = getattr(table, "lambda_event_source_mappings", None)
                if hooks:
                    removed += len(hooks)
                    hooks.clear()
    log.debug("detached %d moto event source pollers", removed)
    return removed
