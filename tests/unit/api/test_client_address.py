"""client_address: what failed authentications are counted against."""

import pytest

from stageline.api.client_address import client_address


@pytest.mark.parametrize(
    ("client", "counted_as"),
    [
        (("203.0.113.7", 50000), "203.0.113.7"),
        (("2001:db8:1:2:aaaa::1", 50000), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb::9", 50000), "2001:db8:1:2::/64"),
        (("::ffff:198.51.100.4", 50000), "198.51.100.4"),
        (("testclient", 50000), "testclient"),
        (None, "unknown"),
    ],
)
def test_an_address_is_counted_as(client: tuple[str, int] | None, counted_as: str) -> None:
    assert client_address({"type": "http", "client": client}) == counted_as
