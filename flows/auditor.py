"""deadline-auditor: every open alert has a live run; repairs what it finds, with a heartbeat.

Absolute imports only: Prefect loads this file by path.
"""

from prefect import flow, get_client

from axtrace.auditor import audit_once


@flow(name="deadline-auditor", log_prints=True)
async def deadline_auditor() -> dict[str, int]:
    """Check that every open AxTrace alert has a run waiting on a future deadline or working;
    dispatch again or wake what is stuck, record each repair in the alert's trace, and emit
    `axtrace.auditor.heartbeat` so an automation can page when the auditor stops."""
    async with get_client() as client:
        counts = await audit_once(client)
    print(f"Audited {counts['open']} open alerts: {counts['redispatched']} dispatched again, "
          f"{counts['woken']} woken")
    return counts
