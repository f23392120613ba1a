"""A real ``prefect worker start --type axtrace-process`` against the session's Prefect server:
it creates its pool through Prefect's own setup and says how its executions start (warm, from
a template it started first; or Prefect's spawn when ``AXTRACE_EXECUTION=spawn``)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import httpx
import pytest

from axtrace.worker import WORKER_TYPE

pytestmark = [pytest.mark.integration]


@pytest.mark.parametrize(("mode", "said"), [
    ("warm", "Run executions start warm, forked from a template"),
    ("spawn", "Run executions start as fresh processes (Prefect's spawn)"),
])
def test_a_started_worker_creates_its_pool_and_says_how_executions_start(
    prefect_api_url: str, mode: str, said: str,
) -> None:
    pool = f"warm-probe-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AXTRACE_EXECUTION": mode, "PREFECT_LOGGING_LEVEL": "INFO"}
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool,
         "--type", WORKER_TYPE, "--run-once"],
        env=env, capture_output=True, text=True, timeout=180, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    assert said in done.stdout + done.stderr
    found = httpx.get(f"{prefect_api_url}/work_pools/{pool}", timeout=30)
    assert found.status_code == 200, found.text
    assert found.json()["type"] == WORKER_TYPE
