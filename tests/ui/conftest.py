"""Fixtures of the browser tests: one Chromium per session, a tab per test (see browser.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SHOTS,
    TIMEOUT_MS,
    VIEWPORT,
    require_browser,
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def ui_url(stack: object) -> str:
    """The Prefect UI of the session's stack: the API URL without ``/api``."""
    return re.sub(r"/api/?$", "", os.environ["PREFECT_API_URL"])


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium with a fresh profile for the session (a browser context)."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for stale in SHOTS.glob("*.png"):  # the folder shows the last run only
        stale.unlink()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS, headless=True, viewport=VIEWPORT, locale="en-US",
            timezone_id="UTC",
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new tab; a screenshot of it is kept when the test fails."""
    tab = chromium.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    try:
        yield tab
    finally:
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            tab.screenshot(path=str(SHOTS / f"FAILED-{request.node.name}.png"))
        tab.close()


