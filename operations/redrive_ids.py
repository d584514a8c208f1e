"""Message IDs a redrive keeps for its whole pass, packed (issue 18: a pass of 1,000,000
messages in at most 150 MB).

A pass remembers every message it met, and each one's outcome, until it ends. As ``str``
keys of a ``set`` and a ``dict`` that cost about 0.3 KB a message: a 36-character ``str``
is an 85-byte object, and each container slot adds 30 to 100 bytes more. SQS message IDs
are UUIDs, so here each one is 16 bytes in a ``bytearray`` (an open-addressing hash table,
double hashing over a prime number of slots, which stays quick to probe when nearly full)
with a one-byte value beside it: 17 bytes a slot, 19 to 29 bytes a message at the table's
load of 0.59 to 0.9 (it grows by half, not double, to stay full). The table is split in
``SHARDS`` that grow one at a time, so a growing table never holds its old and new copies
whole at once.

An ID that is not a lowercase canonical UUID (SQS and moto always send one; tests and
hand-made rows may not) is kept as the ``str`` in a plain dict: any ID works, the
packed ones are only smaller. IDs are never removed (a pass forgets nothing it met);
a value is 1 to 255, 0 meaning absent.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Container, Iterator

KEY_BYTES = 16
SHARD_BITS = 6
SHARDS = 1 << SHARD_BITS
# Slots a shard starts with (a prime), the load past which it grows, and by how much.
FIRST_SLOTS = 11
MAX_LOAD = 0.9
GROWTH = 1.5
# Key arrays this large are anonymous memory maps, not bytearrays: an outgrown one goes back
# to the OS at once, where malloc would keep a hole in its heap for each one of them.
MAPPED_BYTES = 64 * 1024

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def pack(message_id: str) -> bytes | None:
    """The 16 bytes of a lowercase canonical UUID; None for any other ID."""
    if len(message_id) != 36 or not _UUID.fullmatch(message_id):
        return None
    return bytes.fromhex(message_id.replace("-", ""))


def unpack(key: bytes) -> str:
    """The message ID ``pack`` made ``key`` from."""
    h = key.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _zeroed(size: int) -> bytearray | mmap.mmap:
    return mmap.mmap(-1, size) if size >= MAPPED_BYTES else bytearray(size)


def _prime_at_least(n: int) -> int:
    """A prime number of slots: every step of a probe sequence then visits them all."""
    n = max(n, 3) | 1
    while any(n % d == 0 for d in range(3, int(n**0.5) + 1, 2)):
        n += 2
    return n


class _Shard:
    __slots__ = ("keys", "slots", "used", "values")

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.keys = _zeroed(slots * KEY_BYTES)
        self.values = bytearray(slots)
        self.used = 0

    def find(self, key: bytes, h: int) -> int:
        """The slot holding ``key``, or the empty one where it goes."""
        slots = self.slots
        i, step = h % slots, 1 + (h >> 32) % (slots - 1)
        keys, values = self.keys, self.values
        while values[i]:
            start = i * KEY_BYTES
            if keys[start : start + KEY_BYTES] == key:
                return i
            i += step
            if i >= slots:
                i -= slots
        return i

    def put(self, i: int, key: bytes, value: int) -> None:
        self.keys[i * KEY_BYTES : (i + 1) * KEY_BYTES] = key
        self.values[i] = value
        self.used += 1

    def grow(self) -> None:
        """Half as many slots again, every key placed again (no two are equal: no compare)."""
        old_keys, old_values = self.keys, self.values
        self.slots = slots = _prime_at_least(int(self.slots * GROWTH))
        keys = self.keys = _zeroed(slots * KEY_BYTES)
        values = self.values = bytearray(slots)
        for i, value in enumerate(old_values):
            if not value:
                continue
            key = bytes(old_keys[i * KEY_BYTES : (i + 1) * KEY_BYTES])
            h = hash(key) >> SHARD_BITS
            j, step = h % slots, 1 + (h >> 32) % (slots - 1)
            while values[j]:
                j = j + step if j + step < slots else j + step - slots
            keys[j * KEY_BYTES : (j + 1) * KEY_BYTES] = key
            values[j] = value

    def entries(self, wanted: Container[int] | None) -> Iterator[tuple[bytes, int]]:
        keys = self.keys
        for i, value in enumerate(self.values):
            if value and (wanted is None or value in wanted):
                yield bytes(keys[i * KEY_BYTES : (i + 1) * KEY_BYTES]), value


class IdMap:
    """Message ID -> a small number (1 to 255), about 17 bytes a slot for SQS's IDs."""

    def __init__(self) -> None:
        self._shards = [_Shard(FIRST_SLOTS) for _ in range(SHARDS)]
        self._other: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(shard.used for shard in self._shards) + len(self._other)

    def get(self, message_id: str) -> int:
        """The value of ``message_id``; 0 if it has none."""
        key = pack(message_id)
        if key is None:
            return self._other.get(message_id, 0)
        h = hash(key)
        shard = self._shards[h & (SHARDS - 1)]
        return shard.values[shard.find(key, h >> SHARD_BITS)]

    def set(self, message_id: str, value: int) -> None:
        if not 0 < value < 256:
            raise ValueError(f"value {value} not in 1-255")
        key = pack(message_id)
        if key is None:
            self._other[message_id] = value
            return
        h = hash(key)
        shard = self._shards[h & (SHARDS - 1)]
        i = shard.find(key, h >> SHARD_BITS)
        if shard.values[i]:
            shard.values[i] = value
            return
        if shard.used + 1 > shard.slots * MAX_LOAD:
            shard.grow()
            i = shard.find(key, h >> SHARD_BITS)
        shard.put(i, key, value)

    def items(self, wanted: Container[int] | None = None) -> Iterator[tuple[str, int]]:
        """(message ID, value) of every entry, or of those whose value is in ``wanted``
        (only those are turned back into ``str``)."""
        for shard in self._shards:
            for key, value in shard.entries(wanted):
                yield unpack(key), value
        for message_id, value in self._other.items():
            if wanted is None or value in wanted:
                yield message_id, value

    def count(self, value: int) -> int:
        """How many entries have ``value`` (a byte count per shard: no ID is unpacked)."""
        packed = sum(shard.values.count(value) for shard in self._shards)
        return packed + sum(1 for v in self._other.values() if v == value)

    def nbytes(self, *, mapped_only: bool = False) -> int:
        """Bytes of the packed tables (not counting the dict of other IDs); ``mapped_only``:
        of the key arrays in memory maps (which tracemalloc does not see)."""
        return sum(
            len(shard.keys) + (0 if mapped_only else len(shard.values))
            for shard in self._shards
            if not mapped_only or isinstance(shard.keys, mmap.mmap)
        )


class IdSet:
    """A set of message IDs, packed as ``IdMap`` keys."""

    def __init__(self) -> None:
        self._map = IdMap()

    def __contains__(self, message_id: object) -> bool:
        return isinstance(message_id, str) and bool(self._map.get(message_id))

    def __len__(self) -> int:
        return len(self._map)

    def add(self, message_id: str) -> None:
        self._map.set(message_id, 1)

    def nbytes(self, *, mapped_only: bool = False) -> int:
        return self._map.nbytes(mapped_only=mapped_only)
