"""Wakes agents' waiting claims when this process queued a job."""

import asyncio
import time


class ClaimSignal:
    """A counter bumped by the engine (from any thread) when it queued a job; a waiting claim
    polls it cheaply on the event loop and asks the database again as soon as it moves."""

    POLL_SECONDS = 0.05

    def __init__(self) -> None:
        self.generation = 0

    def notify(self) -> None:
        self.generation += 1

    async def wait(self, seen: int, seconds: float) -> None:
        """Return once the counter moved past `seen`, or after `seconds`."""
        until = time.monotonic() + seconds
        while self.generation == seen and time.monotonic() < until:
            await asyncio.sleep(self.POLL_SECONDS)
