"""Small adjustments of the in-process moto that the devstack needs.

1. Detach moto's own Lambda pollers, so that the devstack runner is the only consumer.

With an event source mapping, moto calls the function itself when a message or stream record
arrives: in Docker for SQS (it deletes the messages if the call "succeeds"), and for DynamoDB
streams it even ignores ``Enabled`` and drops the stream records after the call. The devstack
keeps the mappings (so ``ListEventSourceMappings`` shows consumers as on AWS) but unhooks them
from moto's queues and tables; :mod:`infra.devstack.runner` polls instead.

2. Give events delivered to rule targets the ``account`` field that AWS puts in every envelope.
3. Make moto's DynamoDB transactions safe with concurrent writers (see
   :func:`serialize_dynamodb_writes`).
4. Route requests without re-scanning moto's package on every call (see
   :func:`cache_request_routing`).

Both only reach a moto running in this process (``ThreadedMotoServer`` or ``mock_aws``). The
emulation of missing AWS features (metrics, alarms, X-Ray filters, schemas) is elsewhere:
:mod:`infra.devstack.emulator`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

log = logging.getLogger(__name__)


def detach_event_source_pollers() -> int:
    """Unhook every event source mapping from moto's SQS queues and DynamoDB tables.

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


# EventBridge's envelope as AWS delivers it to targets; moto's default template (what a target
# without an InputTransformer receives) leaves out "account", which the Powertools
# EventBridgeModel requires, so every event would be a poison message in the devstack.
EVENT_ENVELOPE_TEMPLATE = (
    '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
    '"account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>, '
    '"detail": <detail>}'
)


def add_account_to_event_envelope() -> Callable[[], None]:
    """Make moto's rule targets receive the ``account`` field; returns the undo function."""
    from moto.events.utils import EventTemplateParser

    original = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = EVENT_ENVELOPE_TEMPLATE

    def undo() -> None:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = original

    return undo


_DYNAMODB_WRITE_METHODS = ("put_item", "update_item", "delete_item")


class _TableLocks:
    """One re-entrant lock per table name, so writes to different tables do not queue."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def get(self, table_name: str) -> threading.RLock:
        with self._guard:
            lock = self._locks.get(table_name)
            if lock is None:
                lock = self._locks[table_name] = threading.RLock()
            return lock

    @contextlib.contextmanager
    def hold(self, table_names: Iterable[str]) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for name in sorted(set(table_names)):  # a fixed order: no deadlock
                stack.enter_context(self.get(name))
            yield


def _transaction_tables(transact_items: list[dict[str, Any]]) -> list[str]:
    return [
        str(op["TableName"])
        for item in transact_items
        for op in item.values()
        if isinstance(op, dict) and op.get("TableName")
    ]


def _stream_table(iterator_arn: str) -> str:
    """``arn:...:table/<name>/stream/<label>|...`` -> ``<name>``."""
    return iterator_arn.split(":table/", 1)[-1].split("/", 1)[0]


def serialize_dynamodb_writes() -> Callable[[], None]:
    """Make moto's DynamoDB transactions safe under concurrent writers; returns the undo.

    moto rolls a failed ``TransactWriteItems`` back by putting a deep copy of each table it
    touched, taken before the transaction, in place of the table. With several writers (the
    traffic simulator, the consumers and the outbox publisher all write the orders table) that
    silently loses every write made meanwhile, and it swaps the table's stream shard for a
    copy, so a stream reader's iterator keeps reading a shard that no longer grows: the outbox
    stops being published. So:

    - every write (and stream read) holds its table's lock, so nothing interleaves with a
      transaction on that table;
    - the stream shard is never deep-copied (the copy shares it); after a failed transaction
      the records its partial writes appended are removed again.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    locks = _TableLocks()
    originals: dict[tuple[type, str], Any] = {}

    def replace(cls: type, name: str, wrapper: Any) -> None:
        originals[(cls, name)] = cls.__dict__.get(name)
        setattr(cls, name, wrapper)

    def table_locked(name: str) -> Any:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def wrapper(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            with locks.get(table_name):
                return original(self, table_name, *args, **kwargs)

        return wrapper

    original_transact = DynamoDBBackend.transact_write_items

    @functools.wraps(original_transact)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        names = _transaction_tables(transact_items)
        with locks.hold(names):
            lengths = [
                (table.stream_shard, len(table.stream_shard.items))
                for name, table in self.tables.items()
                if name in names and getattr(table, "stream_shard", None) is not None
            ]
            try:
                return original_transact(self, transact_items)
            except Exception:
                for shard, length in lengths:
                    del shard.items[length:]
                raise

    original_get_records = DynamoDBStreamsBackend.get_records

    @functools.wraps(original_get_records)
    def get_records(self: Any, iterator_arn: str, limit: int) -> Any:
        with locks.get(_stream_table(iterator_arn)):
            return original_get_records(self, iterator_arn, limit)

    replace(DynamoDBBackend, "transact_write_items", transact_write_items)
    for name in _DYNAMODB_WRITE_METHODS:
        replace(DynamoDBBackend, name, table_locked(name))
    replace(DynamoDBStreamsBackend, "get_records", get_records)
    replace(StreamShard, "__deepcopy__", lambda self, memo: self)

    def undo() -> None:
        for (cls, name), original in originals.items():
            if original is None:
                if name in cls.__dict__:
                    delattr(cls, name)
            else:
                setattr(cls, name, original)

    return undo


def cache_request_routing() -> Callable[[], None]:
    """Memoize moto server's host -> service lookup; returns the undo.

    moto resolves the service of every request under one global lock, listing its package
    directory from disk and trying some 300 URL patterns each time. Under the devstack's load
    (hundreds of requests a second) that lock is where most request time goes. The mapping
    never changes while the server runs.
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

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]

    def undo() -> None:
        DomainDispatcherApplication.get_backend_for_host = original  # type: ignore[method-assign]

    return undo
