"""Backoff: a key's free failures, then waits that double up to a cap, for that key alone."""

from stageline.auth.backoff import Backoff, retry_after_seconds

HOUR_MS = 3600 * 1000


def backoff(limit: int = 3, max_wait_ms: int = 8000) -> Backoff[str]:
    return Backoff(limit=limit, max_wait_ms=max_wait_ms, forget_after_ms=HOUR_MS)


class TestBackoff:
    def test_failures_below_the_limit_cost_no_wait(self) -> None:
        failures = backoff(limit=3)
        assert [failures.failed("k", now=0) for _ in range(2)] == [0, 0]
        assert failures.wait_ms("k", now=0) == 0

    def test_the_limit_th_failure_waits_a_second_and_each_further_one_twice_as_long(
        self,
    ) -> None:
        failures = backoff(limit=3, max_wait_ms=8000)
        waits = []
        now = 0
        for _ in range(7):
            waits.append(failures.failed("k", now=now))
            now += waits[-1]  # the client waits as told, then fails again
        assert waits == [0, 0, 1000, 2000, 4000, 8000, 8000]

    def test_the_wait_runs_out(self) -> None:
        failures = backoff(limit=1)
        failures.failed("k", now=10_000)
        assert failures.wait_ms("k", now=10_400) == 600
        assert failures.wait_ms("k", now=11_000) == 0

    def test_only_the_failing_key_waits(self) -> None:
        failures: Backoff[tuple[str, str]] = Backoff(
            limit=1, max_wait_ms=8000, forget_after_ms=HOUR_MS
        )
        failures.failed(("stranger", "AK1"), now=0)
        assert failures.wait_ms(("stranger", "AK1"), now=1) > 0
        assert failures.wait_ms(("owner", "AK1"), now=1) == 0
        assert failures.wait_ms(("stranger", "AK2"), now=1) == 0

    def test_a_success_forgets_the_failures(self) -> None:
        failures = backoff(limit=2)
        failures.failed("k", now=0)
        failures.succeeded("k")
        assert failures.failed("k", now=1) == 0
        assert failures.failures("k", now=1) == 1

    def test_failures_are_forgotten_after_a_quiet_spell(self) -> None:
        failures = backoff(limit=2)
        failures.failed("k", now=0)
        assert failures.failures("k", now=HOUR_MS) == 1
        assert failures.failures("k", now=HOUR_MS + 1) == 0
        assert failures.failed("k", now=HOUR_MS + 2) == 0

    def test_a_stricter_limit_can_be_given_per_failure(self) -> None:
        failures = backoff(limit=20)
        assert failures.failed("k", now=0, limit=1) == 1000

    def test_the_oldest_key_goes_when_full(self) -> None:
        failures: Backoff[str] = Backoff(
            limit=1, max_wait_ms=8000, forget_after_ms=HOUR_MS, max_entries=2
        )
        for key in "abc":
            failures.failed(key, now=0)
        assert [failures.failures(key, now=0) for key in "abc"] == [0, 1, 1]

    def test_a_key_is_never_forgotten_while_it_must_wait(self) -> None:
        failures: Backoff[str] = Backoff(limit=1, max_wait_ms=10_000, forget_after_ms=1)
        failures.failed("k", now=0)
        assert failures.wait_ms("k", now=400) == 600

    def test_retry_after_is_whole_seconds_rounded_up(self) -> None:
        assert [retry_after_seconds(ms) for ms in (1, 999, 1000, 1001)] == [1, 1, 1, 2]
