"""LoginGuard: a failing client waits, per address and per user under attack; nobody else."""

import pytest

from stageline.auth.login_guard import LoginGuard
from stageline.domain.errors import TooManyAttempts

LIMIT = 4


def guard() -> LoginGuard:
    return LoginGuard(limit=LIMIT, max_wait_ms=60_000)


def refused(logins: LoginGuard, user: str, source: str, now: int = 0) -> TooManyAttempts | None:
    try:
        logins.check(user, source, now=now)
    except TooManyAttempts as error:
        return error
    return None


class TestPerClient:
    def test_a_client_waits_after_limit_failures_whatever_users_it_tries(self) -> None:
        logins = guard()
        for index in range(LIMIT - 1):
            logins.failed(f"user-{index}", "stranger", now=0)
            assert refused(logins, "anyone", "stranger") is None
        logins.failed("user-x", "stranger", now=0)
        error = refused(logins, "anyone", "stranger")
        assert error is not None
        assert error.retry_after == 1
        assert "from this address" in error.message

    def test_other_clients_do_not_wait(self) -> None:
        logins = guard()
        for _ in range(LIMIT * 3):
            logins.failed("alice", "stranger", now=0)
        assert refused(logins, "alice", "alices-laptop") is None

    def test_logging_into_its_own_account_does_not_clear_a_clients_record(self) -> None:
        logins = guard()
        for index in range(LIMIT):
            logins.failed(f"victim-{index}", "stranger", now=0)
        logins.succeeded("strangers-own", "stranger")
        assert refused(logins, "victim-9", "stranger") is not None


class TestPerUser:
    def test_a_user_under_attack_makes_each_failing_address_wait_at_once(self) -> None:
        logins = guard()
        for index in range(LIMIT):  # one try each: no address reaches its own limit
            logins.failed("alice", f"bot-{index}", now=0)
        fresh = "bot-new"
        assert refused(logins, "alice", fresh) is None  # not failing yet: it may try
        logins.failed("alice", fresh, now=0)
        error = refused(logins, "alice", fresh)
        assert error is not None
        assert "for this user" in error.message
        assert refused(logins, "bob", fresh) is None  # only for the user under attack

    def test_the_user_logs_in_from_an_address_that_has_not_been_failing(self) -> None:
        logins = guard()
        for index in range(LIMIT * 5):
            logins.failed("alice", f"bot-{index}", now=0)
        assert refused(logins, "alice", "alices-laptop") is None

    def test_waits_grow_with_each_failure_and_run_out(self) -> None:
        logins = guard()
        for index in range(LIMIT):
            logins.failed("alice", f"bot-{index}", now=0)
        now = 0
        waits = []
        for _ in range(3):
            logins.failed("alice", "bot-0", now=now)
            error = refused(logins, "alice", "bot-0", now=now)
            assert error is not None
            waits.append(error.retry_after)
            now += error.retry_after * 1000
            assert refused(logins, "alice", "bot-0", now=now) is None
        assert waits == [2, 4, 8]  # bot-0's second, third and fourth failure

    def test_a_success_forgets_the_addresss_failures_for_that_user(self) -> None:
        logins = guard()
        for index in range(LIMIT):
            logins.failed("alice", f"bot-{index}", now=0)
        logins.failed("alice", "alices-laptop", now=0)  # a typo while under attack
        assert refused(logins, "alice", "alices-laptop") is not None
        logins.succeeded("alice", "alices-laptop")
        assert refused(logins, "alice", "alices-laptop") is None


@pytest.mark.parametrize("limit", [1, 20])
def test_no_client_waits_before_its_limit_th_failure(limit: int) -> None:
    logins = LoginGuard(limit=limit, max_wait_ms=60_000)
    for _ in range(limit - 1):
        logins.failed("alice", "stranger", now=0)
    assert refused(logins, "alice", "stranger") is None
    logins.failed("alice", "stranger", now=0)
    assert refused(logins, "alice", "stranger") is not None
