"""One way to build AxTrace's Prefect deployments (the sites', the auditor's, the report's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def runner_deployment(
    root: Path, entrypoint: str, *, name: str, work_pool: str | None = None, **options: Any,
) -> Any:
    """A ``RunnerDeployment`` of ``entrypoint`` (``flows/x.py:function``) in the project
    folder ``root``. It records the entrypoint relative to ``root`` and ``root`` as its path,
    so every deployment names the same file the same way and ``verify`` can hash the code
    there. ``options`` go to ``RunnerDeployment.from_entrypoint`` (schedules, tags, ...)."""
    from prefect.deployments.runner import RunnerDeployment

    path, function = entrypoint.split(":")
    deployment = RunnerDeployment.from_entrypoint(
        entrypoint=f"{root / path}:{function}", name=name, work_pool_name=work_pool, **options)
    deployment.entrypoint = entrypoint
    deployment._path = str(root)  # Prefect has no public way to set it (it is the pull step's)
    return deployment
