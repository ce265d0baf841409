"""TtlCache: entries expire on the caller's clock and the oldest go first when full."""

from stageline.auth.ttl_cache import TtlCache


class TestTtlCache:
    def test_an_entry_lives_exactly_its_ttl(self) -> None:
        cache: TtlCache[str, int] = TtlCache(ttl_ms=1000)
        cache.put("a", 1, now=5000)
        assert cache.get("a", now=5999) == 1
        assert cache.get("a", now=6000) is None

    def test_the_oldest_entry_goes_when_full(self) -> None:
        cache: TtlCache[str, int] = TtlCache(ttl_ms=1000, max_entries=2)
        for index, key in enumerate("abc"):
            cache.put(key, index, now=0)
        assert [cache.get(k, now=1) for k in "abc"] == [None, 1, 2]

    def test_a_zero_ttl_caches_nothing(self) -> None:
        cache: TtlCache[str, int] = TtlCache(ttl_ms=0)
        cache.put("a", 1, now=0)
        assert cache.get("a", now=0) is None

    def test_discard_forgets_an_entry(self) -> None:
        cache: TtlCache[str, int] = TtlCache(ttl_ms=1000)
        cache.put("a", 1, now=0)
        cache.discard("a")
        assert cache.get("a", now=1) is None
