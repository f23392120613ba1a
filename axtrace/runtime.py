"""Processes of a running AxTrace: the Prefect server, the serving process, the HTTP API.

``axtrace up`` supervises them; each also runs alone (``axtrace serve``, ``axtrace intake``)
so that they can be scaled, restarted or killed one by one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from axtrace import execution
from axtrace.settings import get_settings


def wait_healthy(url: str, *, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    """Wait until ``url`` answers 200, or fail with the reason."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before {url} was up")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def wait_served(prefect_api: str, sites: list[str], *, timeout: float,
                proc: subprocess.Popen[Any] | None = None) -> None:
    """Wait until a serving process polls every site's deployment (Prefect marks it READY),
    so that an alert raised now starts at once."""
    from axtrace.sites import full_name
    from axtrace.workflow import FLOW_NAME

    names = {full_name(site).split("/", 1)[1] for site in sites}
    query = {"flows": {"name": {"any_": [FLOW_NAME]}},
             "deployments": {"name": {"any_": sorted(names)}}}

    def ready() -> bool:
        found = httpx.post(f"{prefect_api}/deployments/filter", json=query, timeout=10,
                           auth=_prefect_login())
        found.raise_for_status()
        return {d["name"] for d in found.json() if d.get("status") == "READY"} >= names

    deadline = time.monotonic() + timeout
    while not _answers(ready):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the serving process exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sites were not served within {timeout:.0f} s")
        time.sleep(0.5)


def _answers(probe: Any) -> bool:
    try:
        return bool(probe())
    except httpx.HTTPError:
        return False


def _prefect_login() -> tuple[str, str] | None:
    """Prefect's basic-auth login of this process (``PREFECT_API_AUTH_STRING``), if any."""
    login = os.environ.get("PREFECT_API_AUTH_STRING")
    if not login or ":" not in login:
        return None
    user, password = login.split(":", 1)
    return user, password


def spawn(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (Ctrl-C reaches only us), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


SERVER_SETTINGS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # Prefect's late-runs service rewrites the state of every run still Scheduled 15 s after
    # its start time. AxTrace's deadlines are its own, so "Late" buys nothing here, and in a
    # storm those writes take SQLite's one write lock from run creation: 1,000 runs were
    # created in 510 s with it and 190 s without it (thousands of "database is locked" errors
    # with it, none without). A setting given in the environment still wins.
    "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
}
"""Settings of every Prefect server AxTrace starts (``axtrace up``, tests, benchmarks)."""


def start_prefect_server(port: int, log: Path, env: dict[str, str] | None = None,
                         ) -> subprocess.Popen[bytes]:
    server_env = {**SERVER_SETTINGS, **(env or os.environ),
                  "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}
    server_env.pop("PREFECT_API_URL", None)
    return spawn([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                  "--port", str(port)], log, server_env)


def start_child(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", "axtrace", *args], log, env)


def stop(proc: subprocess.Popen[Any] | None, *, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def serve_sites(sites_path: Path) -> None:
    """Serve every site deployment from this process (Prefect's runner, no work pool)."""
    from prefect.runner import Runner

    from axtrace.housekeeping import housekeeping_deployments
    from axtrace.sites import deployment_for, load_sites, sites_root

    settings = get_settings()
    root = sites_root(sites_path.resolve())  # as `sites apply` finds it
    runner = Runner(
        name=f"axtrace-{os.getpid()}", query_seconds=settings.runner_poll_seconds,
        limit=settings.runner_limit, pause_on_shutdown=False,
    )
    for spec in load_sites(sites_path):
        await runner.aadd_deployment(deployment_for(spec, root))
    for extra in housekeeping_deployments(root):
        await runner.aadd_deployment(extra)
    # Each run process starts in this process's folder and copies the deployment's folder
    # (the project) into it unless they are the same: serve from the project folder.
    os.chdir(root)
    execution.install()  # executions fork from a warm template (AXTRACE_EXECUTION=spawn: not)
    await runner.start()


def run_intake(host: str, port: int, *, background: bool = True) -> None:
    import uvicorn

    from axtrace.api import create_app
    from axtrace.ledger.db import upgrade

    upgrade(get_settings().ledger_url)
    uvicorn.run(create_app(background=background, bound_to=host), host=host, port=port,
                log_level="warning")


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
