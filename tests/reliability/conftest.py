from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from axtrace.testing import Stack

OMEGA = Path(__file__).parents[1] / "data" / "omega.yaml"


@pytest.fixture(scope="module")
def bare() -> Iterator[Stack]:
    """A second, separate AxTrace (own Prefect server and ledger) that executes no runs."""
    workdir = Path(tempfile.mkdtemp(prefix="axtrace-bare-"))
    with Stack.start(workdir, sites=OMEGA, serve=False) as stack:
        yield stack
