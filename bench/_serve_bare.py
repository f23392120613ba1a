"""Serve the bare flows of bench/_bare_flows.py exactly as ``axtrace serve`` serves the sites:
Prefect's Runner, the same poll interval and limit (AXTRACE_RUNNER_* settings), one spawned
process per execution, the flow file in the working directory (as the sites' deployments point
at the folder ``axtrace serve`` runs in, so nothing is copied per run).

    cd FOLDER && python bench/_serve_bare.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from axtrace.settings import get_settings

HERE = Path(__file__).resolve().parent
FLOWS = ("bare_two_tasks", "bare_first_wait", "bare_to_close")


async def serve() -> None:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.runner import Runner

    settings = get_settings()
    runner = Runner(name=f"bare-{os.getpid()}", query_seconds=settings.runner_poll_seconds,
                    limit=settings.runner_limit, pause_on_shutdown=False)
    folder = Path.cwd()
    shutil.copy(HERE / "_bare_flows.py", folder / "_bare_flows.py")
    for name in FLOWS:
        deployment = RunnerDeployment.from_entrypoint(
            entrypoint=f"{folder / '_bare_flows.py'}:{name}", name="bench")
        deployment.entrypoint = f"_bare_flows.py:{name}"
        deployment._path = str(folder)
        await runner.aadd_deployment(deployment)
    await runner.start()


if __name__ == "__main__":
    asyncio.run(serve())
