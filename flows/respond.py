"""respond-to-alert: the one standard response to an AI alert, identical at every site.

Each site has its own deployment of this flow (``respond-to-alert/<site>``) that differs only by
its ``site`` parameter; who must act and by when comes from the site's ownership policy block.
Absolute imports only: Prefect loads this file by path.
"""

from prefect import flow

from axtrace import workflow
from axtrace_blocks import Severity


@flow(name=workflow.FLOW_NAME, log_prints=True)
async def respond_to_alert(
    site: str,
    alert_id: int | None = None,
    title: str = "Alert raised by hand from the Prefect UI",
    severity: Severity = Severity.HIGH,
    detector: str | None = None,
    evidence_url: str | None = None,
) -> dict[str, object]:
    """Respond to one AI alert at one site: assign it to the site's owner, notify, wait for an
    acknowledgement, escalate along the chain when deadlines pass, wait for the resolution
    (outcome and reason code), close. Every step lands in the AxTrace ledger and as a Prefect
    event. Leave `alert_id` empty to raise a manual alert from the other fields.
    """
    manual = workflow.ManualAlert(
        title=title, severity=severity.value, detector=detector, evidence_url=evidence_url
    )
    return await workflow.respond(site=site, alert_id=alert_id, manual=manual)
