from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from axtrace.testing import Stack

OMEGA = Path(__file__).parents[1] / "data" / "omega.yaml"
PREFECT_LOGIN = ("axtrace", "s3cret-login")
"""The bare stack runs with Prefect's own basic auth on, as the README recommends."""


@pytest.fixture(scope="module")
def bare() -> Iterator[Stack]:
    """A second, separate AxTrace (own Prefect server and ledger) that executes no runs,
    with Prefect's basic auth on: every AxTrace process must log in to Prefect."""
    workdir = Path(tempfile.mkdtemp(prefix="axtrace-bare-"))
    login = ":".join(PREFECT_LOGIN)
    auth = {"PREFECT_SERVER_API_AUTH_STRING": login, "PREFECT_API_AUTH_STRING": login,
            "AXTRACE_DB_BUSY_TIMEOUT": "2"}
    with Stack.start(workdir, sites=OMEGA, serve=False, extra_env=auth) as stack:
        yield stack
