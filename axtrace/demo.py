"""``axtrace demo``: the story AxTrace fixes, played against a running ``axtrace up``.

Three sites get :data:`PER_SITE` alerts each, enough for the report to judge a site (its
outlier rule needs ``MIN_SAMPLE`` alerts). Berlin acknowledges at once, Lyon only after the
first level's deadline passed (so the alerts escalate), Austin never (every level's deadline
passes and the alerts are marked ignored; the head of data then resolves them so the runs can
finish). It ends with what a manager needs: the report's consistency score over the demo's
alerts, the site it flags in its own words, and where to look next (:func:`ending`).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from axtrace.reports.consistency import MIN_SAMPLE
from axtrace.settings import get_settings

TIMEOUT = 240.0
PER_SITE = MIN_SAMPLE
"""Alerts raised per site: as many as the report needs to flag a site."""
POLL_SECONDS = 1.0


class DemoClient:
    def __init__(self, base: str, token: str | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base, timeout=120, headers=headers)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def wait_for(self, alert_id: int, test: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            alert: dict[str, Any] = self.call("GET", f"/v1/alerts/{alert_id}")
            if test(alert):
                return alert
            time.sleep(POLL_SECONDS)
        raise TimeoutError(f"alert {alert_id} did not get there within {TIMEOUT:.0f} s")


def _notified(level: int) -> Callable[[dict[str, Any]], bool]:
    return lambda a: any(e["step"] == "notified" and e["detail"].get("level") == level
                         for e in a["trace"])


def _at_once(client: DemoClient, alert_id: int) -> None:
    client.wait_for(alert_id, _notified(1))
    client.call("POST", f"/v1/alerts/{alert_id}/ack", json={"responder": "anna.keller"})
    client.call("POST", f"/v1/alerts/{alert_id}/resolve",
                json={"responder": "anna.keller", "outcome": "fixed", "note": "die replaced"})


def _late(client: DemoClient, alert_id: int) -> None:
    client.wait_for(alert_id, _notified(2))
    client.call("POST", f"/v1/alerts/{alert_id}/ack", json={"responder": "hugo.bernard"})
    client.call("POST", f"/v1/alerts/{alert_id}/resolve",
                json={"responder": "hugo.bernard", "outcome": "fixed", "note": "door resealed"})


def _never(client: DemoClient, alert_id: int) -> None:
    client.wait_for(alert_id, lambda a: a["status"] == "ignored")
    client.call("POST", f"/v1/alerts/{alert_id}/resolve",
                json={"responder": "dana.ortiz", "outcome": "known_issue",
                      "note": "found in the weekly review"})


STORY: list[tuple[str, list[str], str, Callable[[DemoClient, int], None]]] = [
    ("berlin-plant", ["Surface crack on press line 3", "Burr on press line 1",
                      "Misaligned die on press line 2", "Scratch on press line 4",
                      "Dent on press line 3"], "acknowledges at once", _at_once),
    ("lyon-store", ["Freezer 4 warming: -12 C and rising", "Freezer 2 door open",
                    "Chiller 1 compressor cycling", "Freezer 4 warming again",
                    "Dairy fridge at 9 C"], "acknowledges late", _late),
    ("austin-region", ["Forecast drift: MAPE 31% (limit 15%)", "Forecast drift: bias +18%",
                       "Feature store lag: 6 h", "Forecast drift: MAPE 27%",
                       "Holiday calendar missing"], "never acknowledges", _never),
]


def run_demo(console: Console) -> list[dict[str, Any]]:
    """Raise the alerts, play the responders, print the per-site summary and the ending."""
    settings = get_settings()
    token = settings.intake_token.get_secret_value() if settings.intake_token else None
    client = DemoClient(settings.base_api_url, token)
    started, since = time.monotonic(), datetime.now(UTC) - timedelta(seconds=1)
    ids = {site: [raise_alert(client, site, title) for title in titles[:PER_SITE]]
           for site, titles, _, _ in STORY}
    for site, _, behaviour, _ in STORY:
        console.print(f"Raised alerts {', '.join(map(str, ids[site]))} at [bold]{site}[/] "
                      f"(its team {behaviour})")
    with console.status("Responders at work; deadlines are seconds long in the demo ..."), \
            ThreadPoolExecutor(len(STORY) * PER_SITE) as pool:
        futures = [pool.submit(play, client, alert_id)
                   for site, _, _, play in STORY for alert_id in ids[site]]
        for future in futures:
            future.result()
        for alert_id in (i for found in ids.values() for i in found):
            client.wait_for(alert_id, lambda a: a["status"] == "closed")
    alerts = [client.call("GET", f"/v1/alerts/{i}") for found in ids.values() for i in found]
    console.print(summary_table(alerts))
    report = client.call("GET", "/v1/report", params={"since": since.isoformat()})
    html = write_html(report, settings.home / "reports" / "demo-report.html")
    ui = os.environ.get("PREFECT_API_URL", "http://127.0.0.1:4200/api").removesuffix("/api")
    for line in ending(report, ids, html, ui):
        console.print(line, markup=False, highlight=False)
    console.print(f"Demo finished in {time.monotonic() - started:.0f} s.")
    return alerts


def raise_alert(client: DemoClient, site: str, title: str) -> int:
    accepted = client.call("POST", "/v1/alerts", json={
        "site": site, "title": title, "severity": "high", "detector": "demo-detector",
        "detector_version": "1.0", "key": f"demo-{site}-{time.time_ns()}"})
    return int(accepted["id"])


def write_html(report: dict[str, Any], path: Path) -> Path:
    """The report as the HTML page ``axtrace report --format html`` writes."""
    from axtrace.reports.html import to_html
    from axtrace.reports.model import Report

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_html(Report.model_validate(report)))
    return path


def ending(report: dict[str, Any], ids: dict[str, list[int]], html: Path,
           ui: str) -> list[str]:
    """What a manager reads last: the score, the flagged site(s) in the report's own words,
    and where to look next. Pure: the report as ``GET /v1/report`` gives it."""
    found = report["consistency"]
    score = found["score"]
    lines = [f"Consistency score across sites: {'-' if score is None else f'{score:g}'} / 100 "
             "(100: every site works the same way)."]
    flags = found["flags"]
    lines += [f"Flagged: {flag['message']}" for flag in flags] or [
        "Flagged: no site stands apart."]
    site = flags[0]["site"] if flags and flags[0]["site"] in ids else next(iter(ids))
    lines += [
        "Where to look next:",
        f"  the report:        {html}  (or `axtrace report --since 1h`)",
        f"  one alert of {site}: axtrace trace {ids[site][0]}",
        f"  its runs:          {ui}/runs, filtered by tag site:{site}",
    ]
    return lines


def summary_table(alerts: list[dict[str, Any]]) -> Table:
    table = Table("site", "alerts", "acknowledged", "escalated", "ignored",
                  "median time to ack", title="Response per site")
    for site in sorted({a["site"] for a in alerts}):
        mine = [a for a in alerts if a["site"] == site]
        tta = [_seconds(a["received_at"], a["acknowledged_at"]) for a in mine
               if a["acknowledged_at"]]
        table.add_row(
            site, str(len(mine)), str(len(tta)),
            str(sum(any(e["step"] == "escalated" for e in a["trace"]) for a in mine)),
            str(sum(any(e["step"] == "ignored" for e in a["trace"]) for a in mine)),
            f"{statistics.median(tta):.1f} s" if tta else "-",
        )
    return table


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
