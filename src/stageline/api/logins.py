"""Password logins that cannot stall the rest of the server.

A login reads the account, checks the password and mints a token (`auth.iam`); the check is
scrypt, tens of milliseconds of CPU by design. It runs outside any transaction, on threads of
its own (`HASHING_THREADS`, half the CPUs), so a flood of logins neither holds the database's
write lock nor takes the worker threads that every other request's database work runs on: the
flood queues behind itself. And a client that keeps failing must wait (`LoginGuard`, 429) before
it costs a hash again.
"""

import os
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from stageline.auth import iam
from stageline.auth.login_guard import LoginGuard
from stageline.domain.errors import Unauthenticated
from stageline.engine.clock import Clock
from stageline.settings import Settings
from stageline.store.database import Database

HASHING_THREADS = max(1, (os.cpu_count() or 2) // 2)


class Logins:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.guard = LoginGuard(
            limit=settings.login_failure_limit,
            max_wait_ms=settings.auth_backoff_max_seconds * 1000,
        )
        self._hashing = anyio.CapacityLimiter(HASHING_THREADS)

    async def issue_token(self, body: dict[str, Any], *, source: str) -> tuple[str, dict[str, Any]]:
        """(token, response body) for the password login `body`, sent from address `source`."""
        request = iam.read_request(body)
        name = iam.user_name(request)
        self.guard.check(name, source, now=self.clock())  # before any work: a 429 costs nothing
        account = await run_in_threadpool(iam.find_account, self.db, request)
        matches = await anyio.to_thread.run_sync(
            iam.password_matches, request, account, limiter=self._hashing
        )
        if account is None or not matches:
            self.guard.failed(name, source, now=self.clock())
            raise Unauthenticated(iam.BAD_CREDENTIALS)
        self.guard.succeeded(name, source)
        return await run_in_threadpool(
            iam.issue_token, self.db, self.settings, request, account, now=self.clock()
        )
