"""The batch-status body parser answers as the framework's validation did."""

import pytest

from stageline.domain.errors import InvalidInput, UnsupportedMediaType
from stageline.schemas.id_array import parse_id_array

ID = "d19799d619424b2bb2625ec2d93ea087"
JSON = "application/json"


def test_ids_come_back_once_in_order_of_first_occurrence() -> None:
    other = "a" * 32
    body = f'["{ID}", "{other}", "{ID}"]'.encode()
    assert parse_id_array(body, content_type=JSON, limit=100) == [ID, other]


def test_an_empty_array_is_fine() -> None:
    assert parse_id_array(b"[]", content_type=JSON, limit=100) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body: a JSON body is required"),
        (b'["abc",', "request body is not valid JSON"),
        (b'{"ids": []}', "body: Input should be a valid list"),
        (b"[1]", "body[0]: Input should be a valid string"),
        (f'["{ID}", "nope"]'.encode(), "body[1]: 'nope' does not match ^[0-9a-zA-Z]{32}$"),
        (f'["{ID}-"]'.encode(), f"body[0]: '{ID}-' does not match ^[0-9a-zA-Z]{{32}}$"),
        (b'["' + b"x" * 2_000_000 + b'"]', "body[0]: '" + "x" * 64 + "…' does not match"),
        (f"[{', '.join([chr(34) + ID + chr(34)] * 101)}]".encode(), "body: at most 100"),
    ],
)
def test_a_bad_body_is_refused_naming_the_element(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_id_array(body, content_type=JSON, limit=100)
    assert refused.value.message.startswith(message)
    assert len(refused.value.message) < 200


def test_a_body_not_sent_as_json_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        parse_id_array(b"[]", content_type="text/plain", limit=100)
    assert "Content-Type: application/json" in refused.value.message
