"""Serve the probe flow from a Prefect Runner as ``axtrace serve`` does (tests only).

``python -m tests.integration.execution.serve PROJECT DEPLOYMENT`` adds the deployment of
``PROJECT/probe_flow.py:probe``, moves into the project folder, calls ``execution.install()``
and starts the Runner: the same order as ``axtrace.runtime.serve_sites``. ``AXTRACE_EXECUTION``
in the environment chooses warm or spawn.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


async def serve(root: Path, name: str) -> None:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.runner import Runner

    from axtrace import execution

    runner = Runner(name=f"{name}-{os.getpid()}", query_seconds=1, limit=8,
                    pause_on_shutdown=False)
    deployment = RunnerDeployment.from_entrypoint(
        entrypoint=f"{root / 'probe_flow.py'}:probe", name=name)
    deployment.entrypoint = "probe_flow.py:probe"
    deployment._path = str(root)
    await runner.aadd_deployment(deployment)
    os.chdir(root)
    print("warm" if execution.install() else "spawn", "executions", flush=True)
    await runner.start()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]).resolve(), sys.argv[2]))
