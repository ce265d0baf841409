"""Headless Chromium for the dashboard's browser tests: one browser per module, a fresh context
(no cookies) per test.

Playwright drives the system's Chromium (`/usr/bin/chromium`, or STAGELINE_TEST_CHROMIUM) and
never downloads a browser. Without one the tests are skipped, unless
STAGELINE_TEST_REQUIRE_BROWSER=1 (as in CI, whose script installs Chromium), which makes that
a failure.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from stageline.settings import Settings
from stageline.store.database import Database
from tests.factories import User, World

CHROMIUM = Path(os.environ.get("STAGELINE_TEST_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("STAGELINE_TEST_REQUIRE_BROWSER") == "1"
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if REQUIRE_BROWSER:
            pytest.fail(f"no Chromium at {CHROMIUM} (STAGELINE_TEST_REQUIRE_BROWSER=1)")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def world(client: httpx.Client, db: Database, settings: Settings) -> World:
    """One project for the module's tests (each makes pipelines of its own): its members'
    password logins are the slow part of setting one up."""
    return World.create(client, db, settings)


@pytest.fixture
def page(browser: Browser, dashboard: str) -> Iterator[Page]:
    context = browser.new_context(base_url=dashboard)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def log_in(page: Page, user: User, path: str = "/") -> None:
    """Open `path`, which sends the browser to the login page, and log in as `user`."""
    page.goto(path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("input[name=username]", user.name)
    page.fill("input[name=password]", user.password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
