"""Time as the store and the wire count it: UTC epoch milliseconds."""

import time
from collections.abc import Callable

Clock = Callable[[], int]


def system_clock() -> int:
    return time.time_ns() // 1_000_000
