"""On-call calendars end to end: a real Prefect server, serving process, intake and ledger;
calendar files whose shifts are seconds long, generated relative to now."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from axtrace.testing import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAMP = "%Y%m%dT%H%M%SZ"


def calendar(path: Path, events: list[tuple[str, float, float]]) -> None:
    """Write shifts ``(ATTENDEE CN or SUMMARY text, start s, end s)`` relative to now; a text
    with a colon is written as the SUMMARY, other names as an ATTENDEE."""
    now = datetime.now(UTC)
    body = ""
    for i, (who, start, end) in enumerate(events):
        person = (f"SUMMARY:{who}\n" if ":" in who
                  else f"SUMMARY:shift\nATTENDEE;CN={who}:mailto:{who}@example.com\n")
        body += (f"BEGIN:VEVENT\nUID:{i}@{path.name}\nDTSTAMP:{now:{STAMP}}\n"
                 f"DTSTART:{now + timedelta(seconds=start):{STAMP}}\n"
                 f"DTEND:{now + timedelta(seconds=end):{STAMP}}\n{person}END:VEVENT\n")
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//axtrace tests//EN\n{body}END:VCALENDAR\n"
    path.write_text(text)


@pytest.fixture(scope="module")
def rota() -> Iterator[tuple[Stack, Path]]:
    """A stack of its own with one site, ``rota``: level 1 from calendar ``first.ics`` (with
    ``lead`` as the fallback), level 2 from ``second.ics`` (names in summaries)."""
    workdir = Path(tempfile.mkdtemp(prefix="axtrace-oncall-"))
    sites = workdir / "sites.yaml"
    sites.write_text(f"""\
sites:
  rota:
    policy:
      owning_team: Rota team
      escalation_chain:
        - name: On call
          oncall_calendar: {workdir / 'first.ics'}
          responders: [lead]
          acknowledge_within: 8s
        - name: Second line
          oncall_calendar: {workdir / 'second.ics'}
          oncall_name_pattern: 'On call: (\\w+)'
          acknowledge_within: 60s
      resolve_within: 10m
""")
    with Stack.start(workdir, sites=sites) as stack:
        yield stack, workdir


def trace(stack: Stack, alert_id: int) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = stack.alert(alert_id)["trace"]
    return steps


def test_a_missing_calendar_file_is_a_warning_naming_the_fallback(
        rota: tuple[Stack, Path]) -> None:
    stack, workdir = rota
    checked = stack.axtrace("sites", "check", str(workdir / "sites.yaml"), check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    said = checked.stdout + checked.stderr
    assert "policy.escalation_chain.1.oncall_calendar: cannot read calendar file" in said
    assert "until it can be read, level 2 is skipped (it has no responders)" in said


def test_who_is_on_call_is_pinned_at_assignment_and_again_at_escalation(
        rota: tuple[Stack, Path]) -> None:
    stack, workdir = rota
    calendar(workdir / "first.ics", [("olga", -60, 600), ("nina", -600, -60)])
    alert_id = stack.raise_alert("rota", "Freezer warming", severity="high")
    assigned = stack.wait_for(alert_id, lambda a: a["level"] >= 1, what="assigned")
    step = next(e for e in assigned["trace"] if e["step"] == "assigned")
    assert step["detail"]["responders"] == ["olga"]
    assert step["detail"]["on_call"] == {"level": 1, "names": ["olga"], "source": "calendar",
                                         "calendar": str(workdir / "first.ics")}
    assert assigned["on_call"] == {"1": ["olga"]}
    page = stack.http.get("/v1/sites/rota")
    assert page.status_code == 200, page.text
    first = page.json()["policy"]["levels"][0]["on_call"]
    assert (first["names"], first["source"]) == (["olga"], "calendar")

    # the second line's shift changes two seconds from now: olga's ends, paul's begins
    calendar(workdir / "second.ics", [("On call: olga", -600, 2), ("On call: paul", 2, 600)])
    for off_shift in ("nina", "paul", "lead"):  # ended; not pinned at level 1; not fallen back
        refused = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": off_shift})
        assert refused.status_code == 403, refused.text
        assert "responder" in refused.text

    escalated = stack.wait_for(alert_id, lambda a: a["level"] == 2, timeout=120,
                               what="escalated to the second line")
    step = next(e for e in escalated["trace"] if e["step"] == "escalated")
    assert step["detail"]["responders"] == ["paul"]
    assert step["detail"]["on_call"] == {"level": 2, "names": ["paul"], "source": "calendar",
                                         "calendar": str(workdir / "second.ics")}
    assert escalated["on_call"] == {"1": ["olga"], "2": ["paul"]}

    acked = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "paul"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "paul"
    refusals = [e for e in trace(stack, alert_id) if e["step"] == "refused"]
    assert [e["actor"] for e in refusals] == ["nina", "paul", "lead"]
    notified = [e for e in trace(stack, alert_id) if e["step"] == "notified"]
    assert [e["detail"]["responders"] for e in notified] == [["olga"], ["paul"]]


def test_an_unreadable_calendar_falls_back_to_the_responders_and_says_why(
        rota: tuple[Stack, Path]) -> None:
    stack, workdir = rota
    (workdir / "first.ics").write_text("not a calendar")
    alert_id = stack.raise_alert("rota", "Line stopped", severity="high")
    assigned = stack.wait_for(alert_id, lambda a: a["level"] >= 1, what="assigned")
    step = next(e for e in assigned["trace"] if e["step"] == "assigned")
    assert step["detail"]["responders"] == ["lead"]
    on_call = step["detail"]["on_call"]
    assert on_call["source"] == "responders"
    assert on_call["reason"].startswith("calendar not read: ")
    assert on_call["reason"].endswith("; fell back to the level's responders")
    acked = stack.http.post(f"/v1/alerts/{alert_id}/ack", json={"responder": "lead"})
    assert acked.status_code == 200, acked.text
