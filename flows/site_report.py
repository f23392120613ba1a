"""site-report: the managers' view as Prefect artifacts, every day.

Computes each site's figures for the last day and the last week from the AxTrace ledger and
publishes one table artifact, one Markdown artifact per site (``site-report-<site>``) and one
cross-site Markdown artifact (``cross-site-report``). Absolute imports only: Prefect loads this
file by path.
"""

from prefect import flow

from axtrace.reports import publish


@flow(name="site-report", log_prints=True)
def site_report(periods: dict[str, str] | None = None) -> dict[str, object]:
    """Publish every site's figures (alerts, times to acknowledge and resolve, deadline
    compliance, escalations, ignored alerts, step adherence, outcomes, versions) and the
    consistency across sites as artifacts. `periods` maps a name to how far back it reaches,
    default {"last day": "1d", "last week": "7d"}.
    """
    result = publish.run_site_report(periods)
    print(f"Consistency score: {result['score']}; outliers: {result['flags'] or 'none'}")
    return result
