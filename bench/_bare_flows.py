"""Bare Prefect flows with the shape of respond-to-alert and none of its work (bench_workflow).

Same flow and task options as ``flows/respond.py`` (async flow, sync tasks, no cache, two
retries), the same number of tasks in each execution, and, for ``bare-to-close``, the same two
suspensions; the tasks do nothing. Loaded by path, like the real flow file.
"""

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.flow_runs import asuspend_flow_run


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def step(name: str, alert_id: int) -> dict[str, object]:
    return {"step": name, "alert_id": alert_id}


@flow(name="bare-two-tasks", log_prints=True)
async def bare_two_tasks(alert_id: int = 0) -> None:
    """The yardstick of issue 10: a bare two-task flow run, started by Prefect's Runner."""
    for name in ("record", "assign"):
        step(name, alert_id)


@flow(name="bare-first-wait", log_prints=True)
async def bare_first_wait(alert_id: int = 0) -> None:
    """Three tasks, as respond-to-alert runs up to its first wait (record, assign, notify)."""
    for name in ("record", "assign", "notify"):
        step(name, alert_id)


@flow(name="bare-to-close", log_prints=True)
async def bare_to_close(alert_id: int = 0) -> None:
    """Eight tasks in three executions with two suspensions, as respond-to-alert with immediate
    answers: record, assign, notify | record, take-answer | record, take-answer, close."""
    context = FlowRunContext.get()
    seen = set(context.flow_run.empirical_policy.pause_keys or ()) if context and \
        context.flow_run else set()
    if "acknowledge" not in seen:
        for name in ("record", "assign", "notify"):
            step(name, alert_id)
        await asuspend_flow_run(key="acknowledge", timeout=3600)
    if "resolve" not in seen:
        for name in ("record", "take-answer"):
            step(name, alert_id)
        await asuspend_flow_run(key="resolve", timeout=3600)
    for name in ("record", "take-answer", "close"):
        step(name, alert_id)
