"""Background work of a server process: a task run every few seconds on its own thread."""

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicService:
    def __init__(self, name: str, task: Callable[[], object], *, interval_seconds: float) -> None:
        self.name = name
        self._task = task
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._task()
            except Exception:
                log.exception("%s failed; trying again in %.1fs", self.name, self._interval)
