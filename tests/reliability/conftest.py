from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from axtrace.testing import Stack

OMEGA = Path(__file__).parents[1] / "data" / "omega.yaml"
SITES = Path(__file__).parents[1] / "data" / "sites.yaml"
GUARD_TOKEN = "guarded-intake-t0ken"
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


@pytest.fixture(scope="module")
def guarded() -> Iterator[Stack]:
    """A separate AxTrace (own Prefect server, serving process and ledger) with the intake
    token set and responder tokens created: tokens, once created, stay required, so they are
    never created on the session's open stack."""
    workdir = Path(tempfile.mkdtemp(prefix="axtrace-guarded-"))
    with Stack.start(workdir, sites=SITES, extra_env={"AXTRACE_INTAKE_TOKEN": GUARD_TOKEN},
                     ) as stack:
        yield stack
