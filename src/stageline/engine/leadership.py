"""Leadership of one server process among several on a database, by a lease row.

The leader renews its lease every `renew_ms`; the others read it each tick and take it over
once it has expired, so a leader that dies (even by `kill -9`) is replaced within
`lease_ms` plus a tick. Lease times come from each process's clock: hosts sharing a database
must keep their clocks in step (NTP) to well within the lease. Two processes may still both
believe they lead for a moment (a leader paused past its lease); work done under a lease must
therefore be idempotent on its own (`engine.schedules` is, by its fired-slot table).
"""

import logging
import os
import secrets
import socket
from dataclasses import dataclass

from stageline.engine.clock import Clock, system_clock
from stageline.store.database import Database
from stageline.store.queries import leases as lease_queries

log = logging.getLogger(__name__)


def process_holder() -> str:
    """`<host>/<pid>/<random>`: names this process in a lease row."""
    return f"{socket.gethostname()[:64]}/{os.getpid()}/{secrets.token_hex(4)}"


@dataclass(frozen=True)
class LeasePeriods:
    lease_ms: int = 10_000
    renew_ms: int = 2_000


class Leadership:
    """Whether this process leads the work called `name`; ask `hold()` before each round."""

    def __init__(
        self,
        db: Database,
        *,
        name: str,
        holder: str | None = None,
        clock: Clock = system_clock,
        periods: LeasePeriods | None = None,
    ) -> None:
        self.db = db
        self.name = name
        self.holder = holder or process_holder()
        self.clock = clock
        self.periods = periods or LeasePeriods()
        self.leading = False
        self.term = 0
        """How many times this process became the leader: work to do once per term (such as
        catching up with what changed while another led) compares it."""

    def hold(self) -> bool:
        """Take the lease if it is free or expired, renew it if it is due; whether this process
        leads now. One read per call; a write only to take or renew."""
        now = self.clock()
        with self.db.reader() as session:
            lease = lease_queries.read_lease(session, name=self.name)
            current = None if lease is None else (lease.holder, lease.expires_at)
        if current is not None:
            holder, expires_at = current
            if holder != self.holder and expires_at >= now:
                return self._now_leading(False)
            renew_at = expires_at - self.periods.lease_ms + self.periods.renew_ms
            if holder == self.holder and now < renew_at:
                return self._now_leading(True)
        with self.db.writer() as session:
            taken = lease_queries.take_lease(
                session,
                name=self.name,
                holder=self.holder,
                now=now,
                until=now + self.periods.lease_ms,
            )
        return self._now_leading(taken)

    def release(self) -> None:
        """At shutdown: let another process lead at once instead of after the lease."""
        if not self.leading:
            return
        with self.db.writer() as session:
            lease_queries.release_lease(session, name=self.name, holder=self.holder)
        self.leading = False

    def _now_leading(self, leading: bool) -> bool:
        if leading != self.leading:
            verb = "now leads" if leading else "no longer leads"
            log.info("%s %s (%s)", self.holder, verb, self.name)
            self.term += leading
        self.leading = leading
        return leading
