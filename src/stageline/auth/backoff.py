"""Failures counted per key, and a wait that doubles with each failure past a free allowance.

This is how Stageline slows down whoever keeps failing to authenticate without locking anybody
else out: the key is what failed (an address with an access key, an address with a user name),
so another key, such as the same access key used from its owner's address, never waits.

State lives in memory, per server process, bounded in size (the least recently failing keys go
first). Times are the caller's clock (epoch ms), so tests can move time.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")

THROTTLED = "The throttling threshold has been reached: "
"""How the refusal of a client that must wait begins, as the API gateway words it."""
FIRST_WAIT_MS = 1000
"""The wait after the last free failure; each further failure doubles it."""
FORGET_AFTER_MS = 60 * 60 * 1000
"""A key's failures are forgotten after an hour without one."""
MAX_DOUBLINGS = 40
"""Past this the wait is astronomically capped anyway; keeps 2**n small."""


@dataclass
class _Failures:
    count: int
    last_at: int
    wait_until: int


class Backoff(Generic[K]):
    """`limit` failures of a key are free; the limit-th makes it wait `FIRST_WAIT_MS`, each
    further one twice as long as the one before, up to `max_wait_ms`. A key with no failure for
    `forget_after_ms` starts afresh; a success forgets it at once."""

    def __init__(
        self,
        *,
        limit: int,
        max_wait_ms: int,
        forget_after_ms: int = FORGET_AFTER_MS,
        max_entries: int = 50_000,
    ) -> None:
        self.limit = limit
        self.max_wait_ms = max_wait_ms
        # A key forgotten while it still had to wait would be let in early.
        self.forget_after_ms = max(forget_after_ms, max_wait_ms)
        self.max_entries = max_entries
        self._keys: OrderedDict[K, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def wait_ms(self, key: K, *, now: int) -> int:
        """How long `key` must wait before it may try again; 0 when it may try now."""
        with self._lock:
            record = self._current(key, now=now)
            return 0 if record is None else max(0, record.wait_until - now)

    def failures(self, key: K, *, now: int) -> int:
        """The key's failures that are not forgotten yet."""
        with self._lock:
            record = self._current(key, now=now)
            return 0 if record is None else record.count

    def failed(self, key: K, *, now: int, limit: int | None = None) -> int:
        """Count a failure of `key` (against `limit` instead of the usual one if given); the
        wait it now has, 0 while it is within its free failures."""
        free = self.limit if limit is None else limit
        with self._lock:
            record = self._current(key, now=now) or _Failures(count=0, last_at=now, wait_until=0)
            record.count += 1
            record.last_at = now
            if record.count >= free:
                doublings = min(record.count - free, MAX_DOUBLINGS)
                record.wait_until = now + min(self.max_wait_ms, FIRST_WAIT_MS << doublings)
            self._keys[key] = record
            self._keys.move_to_end(key)
            while len(self._keys) > self.max_entries:
                self._keys.popitem(last=False)
            return max(0, record.wait_until - now)

    def succeeded(self, key: K) -> None:
        """Forget the key's failures: it proved it holds the secret."""
        with self._lock:
            self._keys.pop(key, None)

    def _current(self, key: K, *, now: int) -> _Failures | None:
        record = self._keys.get(key)
        if record is not None and now - record.last_at > self.forget_after_ms:
            del self._keys[key]
            return None
        return record


def retry_after_seconds(wait_ms: int) -> int:
    """A wait as Retry-After states it: whole seconds, rounded up, at least 1."""
    return max(1, -(-wait_ms // 1000))
