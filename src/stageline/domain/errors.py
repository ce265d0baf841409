"""Errors the domain and the layers above raise; HTTP status codes live in `api.errors`."""

QUOTE_MAX_CHARS = 64
"""The most of a caller's input an error message repeats: enough to recognise it, never the
megabytes someone may have sent."""


def excerpt(text: object, limit: int = QUOTE_MAX_CHARS) -> str:
    """`text` as an error message may quote it: its first `limit` characters, then "…"."""
    value = str(text)
    return value if len(value) <= limit else value[:limit] + "…"


class DomainError(Exception):
    """Base of every error a client can cause; `message` is safe to show to that client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """A request that can never succeed as sent (bad field, bad format, bad value)."""


class UnsupportedMediaType(InvalidInput):
    """A body sent as something other than what the route reads (JSON): 415."""


class InvalidPipeline(InvalidInput):
    """A pipeline definition that does not validate; `path` names the offending field."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class NotFound(DomainError):
    """The thing named does not exist, or is not visible to the caller."""


class ProjectNotFound(NotFound):
    pass


class PipelineNotFound(NotFound):
    pass


class RunNotFound(NotFound):
    pass


class StepNotFound(NotFound):
    pass


class JobNotFound(NotFound):
    pass


class Conflict(DomainError):
    """The request is well formed but the current state does not allow it."""


class RunNotAccepted(Conflict):
    """The pipeline's concurrency limit was reached and it drops new runs (`exceed_action`
    ABORT); the run is recorded as IGNORED."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class StaleDispatch(Conflict):
    """An agent reported on a claim that is no longer the job's current one (fencing)."""


class Unauthenticated(DomainError):
    """No credentials, or credentials that do not check out (401)."""

    def __init__(
        self, message: str, *, clock_skew: bool = False, challenge: str | None = None
    ) -> None:
        super().__init__(message)
        self.clock_skew = clock_skew
        self.challenge = challenge
        """Sent as `WWW-Authenticate`, where clients expect one (the feeds)."""


class ReplayedRequest(DomainError):
    """A state-changing request whose AK/SK signature was received before: a copy (409)."""


class Forbidden(DomainError):
    """Authenticated, but without the role the request needs on that project (403)."""


class TooManyAttempts(DomainError):
    """This caller failed to authenticate too often: it must wait `retry_after` seconds (429).
    Only that caller waits; everybody else, the rightful owner of the key or user included, is
    unaffected."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HookNotFound(NotFound):
    """No live pipeline has a trigger with this webhook (404)."""
