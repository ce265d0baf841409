"""Who must wait after failed password logins: per client address, and per user name.

- **Per client**: an address that has failed `limit` logins (for any users) must wait before
  its next try, longer after each further failure (`Backoff`). This stops one client guessing
  many users' passwords.
- **Per user**: once a user name has failed `limit` logins from anywhere, it is under attack,
  and from then on every address that fails for it must wait after that very failure. This
  stops many clients guessing one user's password, a few tries each.

Neither ever makes a client wait that has not been failing itself: the user's rightful login
from their usual place goes through even while strangers are being held off. A success forgets
that address's failures for that user (not its failures as a client: a client may not clear
its record of guessing other users' passwords by logging into its own account).
"""

from stageline.auth.backoff import THROTTLED, Backoff, retry_after_seconds
from stageline.domain.errors import TooManyAttempts


class LoginGuard:
    def __init__(self, *, limit: int, max_wait_ms: int) -> None:
        self.limit = limit
        self._clients: Backoff[str] = Backoff(limit=limit, max_wait_ms=max_wait_ms)
        self._users: Backoff[str] = Backoff(limit=limit, max_wait_ms=max_wait_ms)
        """Only counted: a user name's failures never make anyone wait by themselves."""
        self._tries: Backoff[tuple[str, str]] = Backoff(limit=limit, max_wait_ms=max_wait_ms)
        """An address's failures for one user name."""

    def check(self, user: str, source: str, *, now: int) -> None:
        """Raise TooManyAttempts if `source` must wait before it tries to log in as `user`."""
        client_wait = self._clients.wait_ms(source, now=now)
        user_wait = self._tries.wait_ms((user, source), now=now)
        if not client_wait and not user_wait:
            return
        # The longer wait is the one that tells the client when it may really try again.
        reason = (
            "from this address" if client_wait >= user_wait else "for this user from this address"
        )
        raise TooManyAttempts(
            THROTTLED + "too many failed logins " + reason,
            retry_after=retry_after_seconds(max(client_wait, user_wait)),
        )

    def failed(self, user: str, source: str, *, now: int) -> None:
        """Count a wrong password (or an unknown user: the same, so as to reveal nothing)."""
        self._clients.failed(source, now=now)
        self._users.failed(user, now=now)
        under_attack = self._users.failures(user, now=now) >= self.limit
        self._tries.failed((user, source), now=now, limit=1 if under_attack else self.limit)

    def succeeded(self, user: str, source: str) -> None:
        self._tries.succeeded((user, source))
