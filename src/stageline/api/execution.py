"""The built-in executor's lifetime inside a process: recover, claim and run, then wind down.

A process that executes jobs first fails the runs a previous process left in flight, and on the
way out stops claiming, kills its steps and fails the runs it leaves unfinished.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from stageline.agent.local import LocalAgent
from stageline.engine.dispatcher import JobQueue
from stageline.engine.runs import RunEngine
from stageline.settings import Settings

log = logging.getLogger(__name__)

RESTARTED = "the server restarted while this run was in flight"
SHUT_DOWN = "the server shut down while this run was in flight"


@contextmanager
def executing(engine: RunEngine, settings: Settings) -> Iterator[LocalAgent]:
    failed = engine.fail_interrupted(RESTARTED)
    if failed:
        log.warning("marked %d interrupted run(s) FAILED", failed)
    agent = LocalAgent(
        JobQueue(engine.db, clock=engine.clock),
        engine,
        workspace_root=settings.workspace_dir,
        slots=settings.executor_slots,
    )
    engine.attach(agent)
    agent.start()
    try:
        yield agent
    finally:
        engine.close()
        agent.shutdown()
        engine.fail_interrupted(SHUT_DOWN)
