"""Prefect's process worker with warm executions: the work pool type ``axtrace-process``.

    prefect work-pool create axtrace --type axtrace-process
    prefect worker start --pool axtrace --type axtrace-process

Everything is Prefect's process worker (the work pool and its limits, cancellation, crash
detection, the UI) except how an execution starts: ``python -m prefect.engine`` is forked from
the warm template of :mod:`axtrace.execution` instead of spawned as a fresh interpreter.
``AXTRACE_EXECUTION=spawn``, or a platform without fork, runs exactly as Prefect's ``process``
type does.

Prefect loads this module in every process that loads its collections (the
``prefect.collections`` entry point ``axtrace_worker``), so it imports only Prefect's process
worker, which Prefect's own worker and CLI import anyway; :mod:`axtrace.execution` and the
settings load when a worker starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.schemas.objects import Flow, FlowRun, WorkPool
    from prefect.client.schemas.responses import DeploymentResponse

WORKER_TYPE = "axtrace-process"


class WarmProcessJobConfiguration(ProcessJobConfiguration):
    """The process worker's job, started by Prefect's engine-command starter even when no
    command is configured (the starter whose ``run_process`` :mod:`axtrace.execution` warms),
    unless executions spawn.

    (Prefect's own process worker sends an unconfigured command through a workspace
    supervisor process, which spawns the engine in turn: two interpreters per execution.)
    """

    def prepare_for_flow_run(
        self,
        flow_run: FlowRun,
        deployment: DeploymentResponse | None = None,
        flow: Flow | None = None,
        work_pool: WorkPool | None = None,
        worker_name: str | None = None,
        worker_id: UUID | None = None,
    ) -> None:
        from axtrace import execution

        super().prepare_for_flow_run(
            flow_run, deployment, flow, work_pool, worker_name, worker_id=worker_id)
        if execution.wanted():
            self._command_configured = True  # the default is `<python> -m prefect.engine`


class WarmProcessWorker(ProcessWorker):
    """Prefect's process worker whose executions fork from a warm template."""

    type = WORKER_TYPE
    job_configuration = WarmProcessJobConfiguration

    _description = (
        "Execute flow runs as subprocesses on a worker, each forked from a warm template "
        "process that has Prefect imported (AxTrace). AXTRACE_EXECUTION=spawn on the worker "
        "spawns them as the process type does."
    )
    _display_name = "AxTrace process (warm)"

    async def setup(self) -> None:
        from axtrace import execution

        warm = execution.install()  # blocks for the template's imports, before any polling
        await super().setup()
        self._logger.info(  # axtrace.execution's own logger has no handler in a worker
            "Run executions start %s", "warm, forked from a template that has Prefect imported"
            if warm else "as fresh processes (Prefect's spawn)")
