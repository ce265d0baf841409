"""Rendered batch-status elements, kept per process and keyed by (run ID, run revision).

Every update of a run bumps its revision, so an entry can never be stale: a dashboard polling the
same pipelines costs one small query per request, and a run that changed is rendered once more.
"""

import threading
from collections import OrderedDict

import orjson
from sqlalchemy import Connection

from stageline.api.render import Renderer
from stageline.store.queries import runs as run_queries

Version = tuple[str, int]


class RenderedRuns:
    """A bounded LRU map from (run ID, revision) to the element's JSON bytes."""

    def __init__(self, renderer: Renderer, *, max_entries: int = 20_000) -> None:
        self.renderer = renderer
        self.max_entries = max_entries
        self._entries: OrderedDict[Version, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def elements(self, connection: Connection, versions: list[Version]) -> dict[str, bytes]:
        """Run ID -> rendered element for every version asked, rendering the ones not held."""
        found: dict[str, bytes] = {}
        missing: dict[str, int] = {}
        with self._lock:
            for run_id, revision in versions:
                element = self._entries.get((run_id, revision))
                if element is None:
                    missing[run_id] = revision
                else:
                    self._entries.move_to_end((run_id, revision))
                    found[run_id] = element
        if missing:
            fresh = {
                (run.id, run.revision): orjson.dumps(self.renderer.latest_run(run))
                for run in run_queries.read_runs_for_status(connection, run_ids=list(missing))
            }
            with self._lock:
                self._entries.update(fresh)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            found.update({run_id: element for (run_id, _), element in fresh.items()})
        return found
