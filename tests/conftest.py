"""Session set-up shared by all tests.

Prefect reads its settings when it is first imported, so the ports and folders of the test
stack are chosen here, before anything imports Prefect; the stack itself (a real Prefect
server, a serving process and the AxTrace API) starts only when a test asks for it.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from axtrace.testing import free_port

# Property tests check properties, not speed: on 2 busy cores one example can take longer than
# Hypothesis's default 200 ms deadline, which then fails a test whose property held.
hypothesis_settings.register_profile("axtrace", deadline=None)
hypothesis_settings.load_profile("axtrace")

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


INTAKE_TOKEN = "t0ken-for-tests"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"axtrace-test-signing-secret-0001").decode()
OLD_SIGNING_SECRET = "whsec_" + base64.b64encode(b"an-older-key-still-accepted!").decode()
GRAFANA_SECRET = "grafana-hmac-secret"


@pytest.fixture(scope="session")
def secured(stack: Any) -> Iterator[Any]:
    """A second intake on the same ledger and Prefect, with credentials configured."""
    import httpx

    from axtrace.runtime import start_child, stop, wait_healthy

    port = free_port()
    env = {**stack.env, "AXTRACE_INTAKE_TOKEN": INTAKE_TOKEN, "AXTRACE_SOURCES": json.dumps({
        "native": {"signing_secrets": [OLD_SIGNING_SECRET, SIGNING_SECRET]},
        "grafana": {"grafana_secret": GRAFANA_SECRET},
    })}
    proc = start_child(["intake", "--port", str(port), "--no-background"],
                       stack.workdir / "logs" / "secured-intake.log", env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def prefect_api_url(stack: object) -> str:
    """The API URL of the session's real Prefect server (this process is pointed at it)."""
    return os.environ["PREFECT_API_URL"]
