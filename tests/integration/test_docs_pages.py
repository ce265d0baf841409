"""/docs and /redoc load nothing from another host: every file they refer to is served here."""

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

REFERENCE = re.compile(r"""(?:src|href)="([^"]+)"|url: '([^']+)'|spec-url="([^"]+)\"""")
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


def references(html: str) -> list[str]:
    return [next(part for part in match if part) for match in REFERENCE.findall(html)]


@pytest.mark.parametrize(("page", "expected"), [("/docs", 3), ("/redoc", 2)])
def test_a_documentation_page_refers_only_to_files_this_server_serves(
    client: httpx.Client, page: str, expected: int
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "fonts.googleapis.com" not in response.text
    found = references(response.text)
    assert len(found) >= expected, found
    page_url = f"{client.base_url}{page}"
    for reference in found:
        absolute = urljoin(page_url, reference)
        assert urlsplit(absolute).netloc == client.base_url.netloc.decode(), reference
        served = client.get(absolute)
        assert served.status_code == 200, reference
        suffix = "." + reference.rsplit(".", 1)[-1]
        assert served.headers["content-type"].startswith(CONTENT_TYPES[suffix]), reference


def test_swagger_ui_asks_no_public_validator_and_has_its_oauth2_redirect(
    client: httpx.Client,
) -> None:
    page = client.get("/docs").text
    assert '"validatorUrl": null' in page
    assert "/docs/oauth2-redirect" in page
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "oauth2" in redirect.text.lower()
