"""``axtrace demo``: the story AxTrace fixes, played against a running ``axtrace up``.

Three sites get an alert each. Berlin acknowledges at once, Lyon only after the first level's
deadline passed (so the alert escalates), Austin never (every level's deadline passes and the
alert is marked ignored; the head of data then resolves it so the run can finish).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from axtrace.settings import get_settings

TIMEOUT = 240.0


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
            time.sleep(0.5)
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


STORY: list[tuple[str, str, str, Callable[[DemoClient, int], None]]] = [
    ("berlin-plant", "Surface crack on press line 3", "acknowledges at once", _at_once),
    ("lyon-store", "Freezer 4 warming: -12 C and rising", "acknowledges late", _late),
    ("austin-region", "Forecast drift: MAPE 31% (limit 15%)", "never acknowledges", _never),
]


def run_demo(console: Console) -> list[dict[str, Any]]:
    """Raise the three alerts, play the responders, print the per-site summary."""
    settings = get_settings()
    token = settings.intake_token.get_secret_value() if settings.intake_token else None
    client = DemoClient(settings.base_api_url, token)
    started = time.monotonic()
    ids: dict[str, int] = {}
    for site, title, behaviour, _ in STORY:
        accepted = client.call("POST", "/v1/alerts", json={
            "site": site, "title": title, "severity": "high", "detector": "demo-detector",
            "detector_version": "1.0", "key": f"demo-{site}-{time.time_ns()}"})
        ids[site] = accepted["id"]
        console.print(f"Raised alert {accepted['id']} at [bold]{site}[/] (its team {behaviour})")
    with console.status("Responders at work; deadlines are seconds long in the demo ..."), \
            ThreadPoolExecutor(len(STORY)) as pool:
        futures = [pool.submit(play, client, ids[site]) for site, _, _, play in STORY]
        for future in futures:
            future.result()
        for alert_id in ids.values():
            client.wait_for(alert_id, lambda a: a["status"] == "closed")
    alerts = [client.call("GET", f"/v1/alerts/{i}") for i in ids.values()]
    console.print(summary_table(alerts))
    console.print(f"Demo finished in {time.monotonic() - started:.0f} s. "
                  f"See one timeline with `axtrace trace {ids['lyon-store']}`.")
    return alerts


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
