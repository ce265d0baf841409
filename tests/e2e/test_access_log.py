"""`stageline serve` writes no line per request unless asked to (`--access-log`)."""

import secrets
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .conftest import _serve

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("flags", "logged"), [((), False), (("--access-log",), True)])
def test_serve_logs_each_request_only_with_access_log(
    tmp_path: Path, flags: tuple[str, ...], logged: bool
) -> None:
    probe = secrets.token_hex(8)
    database_url = f"sqlite:///{tmp_path / 'stageline.db'}"
    with contextmanager(_serve)(tmp_path, database_url, "--no-agent", *flags) as server:
        response = httpx.get(f"{server.base_url}/health?probe={probe}", trust_env=False)
        assert response.status_code == 200
        assert response.headers["X-Request-Id"]
    # Read after the server has stopped, so that every line it wrote is in the file.
    assert (probe in server.output()) is logged
