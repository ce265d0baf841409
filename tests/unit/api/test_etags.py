"""Entity tags: strong, the same for the same bytes, and If-None-Match compared weakly."""

import pytest

from stageline.api.etags import element_digest, etag_of, etag_of_elements, none_match


def test_a_tag_is_strong_and_follows_the_bytes() -> None:
    tag = etag_of(b"[1]")
    assert tag.startswith('"')
    assert tag.endswith('"')
    assert len(tag) == 34
    assert etag_of(b"[1]") == tag
    assert etag_of(b"[2]") != tag


def test_an_arrays_tag_follows_its_elements_and_their_order() -> None:
    a, b = element_digest(b'{"a":1}'), element_digest(b'{"b":2}')
    assert etag_of_elements([a, b]) == etag_of_elements([a, b])
    assert etag_of_elements([a, b]) != etag_of_elements([b, a])
    assert etag_of_elements([a]) != etag_of_elements([a, b])


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"x"', True),
        ('W/"x"', True),
        ('"y", "x"', True),
        ("*", True),
        ('"y"', False),
        ("x", False),
        ("", False),
    ],
)
def test_if_none_match_lists_are_compared_weakly(header: str, matches: bool) -> None:
    assert none_match(header, '"x"') is matches
