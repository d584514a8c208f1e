"""DynamoDB in the devstack's moto: safe, cheap transactions, TTL deletion, bounded streams.

Transactions. AWS makes ``TransactWriteItems`` idempotent with its ``ClientRequestToken``
(botocore fills one in, and reuses it when it retries a call): a retry of a transaction that
went through succeeds again without writing twice. moto ignores the token, so a retry after a
slow response (a read timeout) failed its own conditions; the outbox producers reported
"cannot create order ...: it is not new". Here a token is remembered for AWS's 10 minutes.

moto rolls a failed ``TransactWriteItems`` back by deep-copying every table the
transaction touches *before every transaction*, and putting the copies in place on failure.
That costs a copy of the whole table per transaction (the outbox writes every order change
with one), so order writes slowed down as the table grew. With several writers it also lost
every write made meanwhile and swapped the table's stream shard. Here:

- every write (and stream read) holds its table's lock, so nothing interleaves with a
  transaction on that table;
- moto's whole-table copy becomes a no-op inside the transaction; instead the items at the
  keys the transaction names are copied before it runs and put back if it fails, and the
  stream records its partial writes appended are removed again.

Housekeeping (:func:`sweep`, from the emulator's tick), as AWS does it:

- items whose TTL attribute is in the past are deleted from tables with TTL enabled (AWS does
  it within a few days; the stream sees a REMOVE);
- stream records older than 24 hours are trimmed; of those every reader has read, only the
  newest ``STREAM_READ_KEEP`` stay (at most ``limit`` without a reader; see :func:`trim_stream`);
- shard iterators expire 15 minutes after they were handed out (moto keeps every one, and a
  stream reader gets a new one on every ``GetRecords``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException

from infra.devstack.emulator._patches import Patcher

log = logging.getLogger(__name__)

WRITE_METHODS = ("put_item", "update_item", "delete_item")
STREAM_RETENTION = timedelta(hours=24)
ITERATOR_LIFETIME_S = 15 * 60
TOKEN_LIFETIME_S = 10 * 60
# A stream reader that polled within this window is protected from trimming.
READER_WINDOW_S = 60.0
# Stream records every reader has read that are kept for a new reader (see trim_stream).
STREAM_READ_KEEP = 1_000
CREATED_ATTR = "_eventops_created"
TOKENS_ATTR = "_eventops_transaction_tokens"
_local = threading.local()


class TableLocks:
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


# The devstack's writers and the emulator's sweeps share these locks.
LOCKS = TableLocks()


def transaction_tables(transact_items: list[dict[str, Any]]) -> list[str]:
    return [
        str(op["TableName"])
        for item in transact_items
        for op in item.values()
        if isinstance(op, dict) and op.get("TableName")
    ]


def stream_table(iterator_arn: str) -> str:
    """``arn:...:table/<name>/stream/<label>|...`` -> ``<name>``."""
    return iterator_arn.split(":table/", 1)[-1].split("/", 1)[0]


# --- item-level undo ------------------------------------------------------------------------

Slot = tuple[Any, Any, Any, Any]  # (table, hash value, range value, item before or None)


def _key_of(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any] | None:
    source = op.get("Item") if op_type == "Put" else op.get("Key")
    if not isinstance(source, dict) or table.hash_key_attr not in source:
        return None
    if table.range_key_attr is not None and table.range_key_attr not in source:
        return None
    return source


def snapshot(tables: dict[str, Any], transact_items: list[dict[str, Any]]) -> list[Slot]:
    """Copies of the items at every key the transaction names (None where there is none).

    A malformed element is skipped: moto rejects it before writing anything for it.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType

    slots: list[Slot] = []
    for element in transact_items:
        for op_type, op in element.items():
            table = tables.get(op.get("TableName", "")) if isinstance(op, dict) else None
            if table is None:
                continue
            key = _key_of(table, op_type, op)
            if key is None:
                continue
            try:
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = (
                    DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                )
                current = table.get_item(hash_value, range_value)
            except Exception:  # moto's own validation reports it
                continue
            slots.append((table, hash_value, range_value, copy.deepcopy(current)))
    return slots


def restore(slots: list[Slot]) -> None:
    """Put every snapshotted item back as it was (first snapshot of a key wins)."""
    for table, hash_value, range_value, before in reversed(slots):
        if range_value is not None:
            bucket = table.items[hash_value]
            if before is not None:
                bucket[range_value] = before
            else:
                bucket.pop(range_value, None)
                if not bucket:
                    del table.items[hash_value]
        elif before is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = before


def _in_transaction() -> bool:
    return int(getattr(_local, "transactions", 0)) > 0


class CopyModule:
    """moto's DynamoDB backend sees this as its ``copy`` module.

    Inside a transaction started through :func:`wrap_transact_write_items` a table "copy" is
    the table itself, so moto's rollback (putting the copies back) changes nothing; every other
    deep copy is a real one.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        if isinstance(value, Table) and _in_transaction():
            return value
        return copy.deepcopy(value, memo)


class IdempotentParameterMismatch(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException"

    def __init__(self) -> None:
        super().__init__(
            self.error_type,
            message="The ClientRequestToken was used with different transaction items",
        )


def _fingerprint(transact_items: list[dict[str, Any]]) -> str:
    text = json.dumps(transact_items, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _tokens(backend: Any, now: float) -> dict[str, tuple[float, str]]:
    """The backend's recent tokens (kept in its ``__dict__``, so moto's reset clears them)."""
    tokens: dict[str, tuple[float, str]] = backend.__dict__.setdefault(TOKENS_ATTR, {})
    # Insertion-ordered: the oldest come first.
    for token in list(tokens):
        if now - tokens[token][0] < TOKEN_LIFETIME_S:
            break
        tokens.pop(token, None)
    return tokens


def wrap_transact_write_items_response(original: Any) -> Any:
    """Hand the request's ``ClientRequestToken`` to the backend (moto's signature has none)."""

    @functools.wraps(original)
    def transact_write_items(self: Any) -> Any:
        _local.token = (self.body or {}).get("ClientRequestToken")
        try:
            return original(self)
        finally:
            _local.token = None

    return transact_write_items


def wrap_transact_write_items(original: Any, locks: TableLocks) -> Any:
    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        names = transaction_tables(transact_items)
        token = getattr(_local, "token", None)
        with locks.hold(names):
            if token:
                seen = _tokens(self, time.monotonic()).get(token)
                if seen is not None:
                    if seen[1] != _fingerprint(transact_items):
                        raise IdempotentParameterMismatch()
                    return None  # done already: a retry succeeds without writing again
            tables = {name: self.tables[name] for name in set(names) if name in self.tables}
            slots = snapshot(tables, transact_items)
            lengths = [
                (table.stream_shard, len(table.stream_shard.items))
                for table in tables.values()
                if getattr(table, "stream_shard", None) is not None
            ]
            _local.transactions = getattr(_local, "transactions", 0) + 1
            try:
                original(self, transact_items)
            except Exception:
                restore(slots)
                for shard, length in lengths:
                    del shard.items[length:]
                raise
            finally:
                _local.transactions -= 1
            if token:
                now = time.monotonic()
                _tokens(self, now)[token] = (now, _fingerprint(transact_items))
            return None

    return transact_write_items


def wrap_table_write(original: Any, locks: TableLocks) -> Any:
    @functools.wraps(original)
    def write(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        with locks.get(table_name):
            return original(self, table_name, *args, **kwargs)

    return write


def wrap_get_records(original: Any, locks: TableLocks) -> Any:
    @functools.wraps(original)
    def get_records(self: Any, iterator_arn: str, limit: int) -> Any:
        with locks.get(stream_table(iterator_arn)):
            iterator = self.shard_iterators.get(iterator_arn)
            horizon = iterator.stream_shard.starting_sequence_number if iterator else None
            if horizon is not None and int(iterator.sequence_number) < horizon:
                # Its records were trimmed (see trim_stream): AWS would answer
                # TrimmedDataAccessException; a reader resuming at the trim horizon is what a
                # Lambda event source does then.
                log.warning("stream reader behind the trim horizon: resuming there")
                iterator.sequence_number = horizon
            return original(self, iterator_arn, limit)

    return get_records


def wrap_iterator_init(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.__dict__[CREATED_ATTR] = time.monotonic()

    return __init__


def install(patcher: Patcher, locks: TableLocks = LOCKS) -> None:
    """Serialize DynamoDB writes per table and replace moto's whole-table rollback."""
    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator

    patcher.setattr(
        DynamoHandler,
        "transact_write_items",
        wrap_transact_write_items_response(DynamoHandler.transact_write_items),
    )
    patcher.setattr(
        DynamoDBBackend,
        "transact_write_items",
        wrap_transact_write_items(DynamoDBBackend.transact_write_items, locks),
        requires=("transact_items",),
    )
    patcher.setattr(models, "copy", CopyModule())
    for name in WRITE_METHODS:
        patcher.setattr(
            DynamoDBBackend,
            name,
            wrap_table_write(getattr(DynamoDBBackend, name), locks),
            requires=("table_name",),
        )
    patcher.setattr(
        DynamoDBStreamsBackend,
        "get_records",
        wrap_get_records(DynamoDBStreamsBackend.get_records, locks),
        requires=("iterator_arn", "limit"),
    )
    patcher.setattr(
        ShardIterator, "__init__", wrap_iterator_init(ShardIterator.__init__), requires=("self",)
    )


# --- housekeeping ---------------------------------------------------------------------------


def _backends() -> Iterator[Any]:
    from moto.dynamodb.models import dynamodb_backends

    for regions in list(dynamodb_backends.values()):
        yield from list(regions.values())


def _ttl_attribute(table: Any) -> str | None:
    ttl = getattr(table, "ttl", None) or {}
    if ttl.get("TimeToLiveStatus") != "ENABLED":
        return None
    return ttl.get("AttributeName") or None


def _expired(item: Any, attribute: str, now_s: float) -> bool:
    value = item.attrs.get(attribute)
    if value is None or value.type != "N":
        return False  # AWS ignores a TTL attribute that is not a number
    try:
        return float(value.value) < now_s
    except (TypeError, ValueError):
        return False


def delete_expired(table: Any, now_s: float, locks: TableLocks = LOCKS) -> int:
    """Delete the items of ``table`` whose TTL has passed; returns how many."""
    attribute = _ttl_attribute(table)
    if attribute is None:
        return 0
    with locks.get(table.name):
        doomed = [
            (item.hash_key, item.range_key)
            for item in _items(table)
            if _expired(item, attribute, now_s)
        ]
        for hash_value, range_value in doomed:
            table.delete_item(hash_value, range_value)
            # moto leaves an empty partition behind when its last item goes.
            if range_value is not None and not table.items.get(hash_value, True):
                del table.items[hash_value]
    return len(doomed)


def _items(table: Any) -> Iterator[Any]:
    """Every item of a table, in storage order (moto's ``all_items`` sorts them)."""
    for value in list(table.items.values()):
        if table.range_key_attr:
            yield from list(value.values())
        else:
            yield value


def _reader_position(shard: Any, now_monotonic: float) -> int | None:
    """The lowest sequence number a reader polling this shard lately still has to read."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    positions = [
        int(iterator.sequence_number)
        for regions in list(dynamodbstreams_backends.values())
        for backend in list(regions.values())
        for iterator in list(backend.shard_iterators.values())
        if iterator.stream_shard is shard
        and now_monotonic - iterator.__dict__.get(CREATED_ATTR, 0.0) < READER_WINDOW_S
    ]
    return min(positions, default=None)


def trim_stream(table: Any, now: datetime, limit: int, locks: TableLocks = LOCKS) -> int:
    """Drop a shard's stream records older than 24 h (AWS's retention), and old ones past a cap.

    A record that a reader which polled the shard in the last minute has not read yet is kept
    (up to the 24 h); of the records every such reader has read, the newest
    ``STREAM_READ_KEEP`` stay for a new reader starting at ``TRIM_HORIZON``. Without a recent
    reader, the newest ``limit`` records stay. Sequence numbers stay as they were: moto derives
    them from the shard's starting number plus the position, so the starting number moves on
    by the records dropped.
    """
    shard = getattr(table, "stream_shard", None)
    if shard is None:
        return 0
    with locks.get(table.name):
        records = shard.items
        cutoff = now - STREAM_RETENTION
        old = 0
        while old < len(records) and _record_time(records[old]) < cutoff:
            old += 1
        reader = _reader_position(shard, time.monotonic())
        if reader is None:
            excess = len(records) - limit
        else:
            excess = reader - shard.starting_sequence_number - STREAM_READ_KEEP
        drop = min(len(records), max(old, excess))
        if drop <= 0:
            return 0
        del records[:drop]
        shard.starting_sequence_number += drop
    return drop


def _record_time(record: Any) -> datetime:
    created = record.record["dynamodb"]["ApproximateCreationDateTime"]
    return created if isinstance(created, datetime) else datetime.max


def expire_iterators(now_monotonic: float) -> int:
    """Forget shard iterators handed out more than 15 minutes ago."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    dropped = 0
    for regions in list(dynamodbstreams_backends.values()):
        for backend in list(regions.values()):
            iterators = backend.shard_iterators
            # Insertion-ordered: the oldest come first.
            for arn in list(iterators):
                created = iterators[arn].__dict__.get(CREATED_ATTR)
                # ``created + lifetime``, not ``now - created``: the test's ``created + 15 min``
                # then compares exactly (a difference of floats can come out just under it).
                if created is not None and now_monotonic < created + ITERATOR_LIFETIME_S:
                    break
                iterators.pop(arn, None)
                dropped += 1
    return dropped


def sweep(now: datetime, stream_limit: int) -> dict[str, int]:
    """One housekeeping pass over every table; ``now`` is naive UTC, like moto's clocks."""
    now_s = (now - datetime(1970, 1, 1)).total_seconds()
    expired = trimmed = 0
    for backend in _backends():
        for table in list(backend.tables.values()):
            expired += delete_expired(table, now_s)
            trimmed += trim_stream(table, now, stream_limit)
    return {
        "ttl_deleted": expired,
        "stream_records_trimmed": trimmed,
        "shard_iterators_expired": expire_iterators(time.monotonic()),
    }
