"""A small thread-safe cache whose entries live a fixed time, bounded in size."""

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries expire `ttl_ms` after they were put; the oldest go first when it is full.

    Times are the caller's clock (epoch ms), so tests can move time. A TTL of 0 caches nothing.
    """

    def __init__(self, *, ttl_ms: int, max_entries: int = 10_000) -> None:
        self.ttl_ms = ttl_ms
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[int, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, *, now: int) -> V | None:
        # One dict lookup is atomic under the GIL: a hit, on every authenticated request, takes
        # no lock. Removing an expired entry does, and tolerates another thread having done it.
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V, *, now: int) -> None:
        if self.ttl_ms <= 0:
            return
        with self._lock:
            self._entries[key] = (now + self.ttl_ms, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)
