"""Debian's Chromium driven by Playwright for the UI tests (never a downloaded browser).

Without /usr/bin/chromium (``apt-get install chromium``) or the ``playwright`` Python package the
browser tests skip, saying which is missing; with ``AXTRACE_REQUIRE_SERVICES=1`` (CI) they fail.
Screenshots of every step land in ``test-output/screenshots/`` on every run, and one more named
``FAILED-<test>.png`` when a test fails.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
TIMEOUT_MS = 30_000  # the Prefect server, the runner and Chromium share 2 cores
VIEWPORT = {"width": 1280, "height": 900}
TALL = 1300
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # the machine has no network: without these Chromium keeps dialling Google's hosts
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def browser_missing() -> str | None:
    """Why no browser test can run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: apt-get install chromium (Debian's package)"
    if importlib.util.find_spec("playwright") is None:
        return ("the playwright Python package is not installed: pip install playwright "
                "(the package only; never `playwright install`, which downloads a browser)")
    return None


def require_browser() -> None:
    reason = browser_missing()
    if reason is None:
        return
    if os.environ.get("AXTRACE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"the browser tests are required here: {reason}")
    pytest.skip(reason)


class Shots:
    """Numbered screenshots of one test's steps: ``<prefix>-<nn>-<what>.png``.

    The Prefect UI scrolls inside its own container, so a full-page screenshot shows no more
    than the window: ``tall=True`` takes the shot through a taller window instead.
    """

    def __init__(self, page: Any, prefix: str) -> None:
        self.page, self.prefix, self.count = page, prefix, 0

    def __call__(self, what: str, *, tall: bool = False) -> Path:
        self.count += 1
        if not tall:
            return self._save(f"{self.count:02d}-{what}")
        self.page.set_viewport_size({**VIEWPORT, "height": TALL})
        try:
            self.page.wait_for_timeout(500)  # let the layout follow the window
            return self._save(f"{self.count:02d}-{what}")
        finally:
            self.page.set_viewport_size(VIEWPORT)

    def aside(self, what: str) -> Path:
        """A shot that is not a step (a refusal, a retry): ``<prefix>-<nn>x-<what>.png``."""
        return self._save(f"{self.count:02d}x-{what}")

    def _save(self, name: str) -> Path:
        path = SHOTS / f"{self.prefix}-{name}.png"
        self.page.screenshot(path=str(path))
        return path
