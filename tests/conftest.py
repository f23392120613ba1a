"""Session set-up shared by all tests.

Prefect reads its settings when it is first imported, so the ports and folders of the test
stack are chosen here, before anything imports Prefect; the stack itself (a real Prefect
server, a serving process and the AxTrace API) starts only when a test asks for it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from axtrace.testing import free_port

assert "prefect" not in sys.modules, "Prefect must not be imported before its settings are set"
WORKDIR = Path(tempfile.mkdtemp(prefix="axtrace-tests-"))
PREFECT_PORT = free_port()
API_PORT = free_port()
os.environ.update({
    "PREFECT_HOME": str(WORKDIR / "prefect"),
    "PREFECT_API_URL": f"http://127.0.0.1:{PREFECT_PORT}/api",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "AXTRACE_HOME": str(WORKDIR),
    "AXTRACE_DATABASE_URL": f"sqlite:///{WORKDIR / 'axtrace.db'}",
    "AXTRACE_API_PORT": str(API_PORT),
})

TEST_SITES = Path(__file__).parent / "data" / "sites.yaml"


@pytest.fixture(scope="session")
def stack() -> Iterator[object]:
    """A real AxTrace on loopback for the whole session (started once, about 30 s)."""
    from axtrace.testing import Stack

    with Stack.start(WORKDIR, sites=TEST_SITES, prefect_port=PREFECT_PORT,
                     api_port=API_PORT) as running:
        yield running


@pytest.fixture(scope="session")
def prefect_api_url(stack: object) -> str:
    """The API URL of the session's real Prefect server (this process is pointed at it)."""
    return os.environ["PREFECT_API_URL"]
