"""A site's page for its team (``GET /v1/sites``, ``/v1/sites/{site}``, ``.../policy-history``):
the real app on a real SQLite ledger, called in process. Sites are fixed by
``AXTRACE_KNOWN_SITES`` and Prefect does not answer here, so the policy shown is the last one on
record in the ledger (the page with Prefect's policy blocks is tested in
``tests/integration/test_site_pages.py``).

berlin, as written below (``now`` = the test's start, policy from ``tests/unit/conftest.py``):

    policy history  seq 1  first apply;  seq 2  level 1 acknowledge 10m -> 5m (the last)
    alerts          a1 received now-1m,  open, level 1 (pinned: the faster policy)
                    a2 received now-30m, acknowledged by clara at level 2, reminder now+10m
                    a3 received now-5h,  acknowledged, level 3, overdue since now-5m
                    a4 closed (not on the page);  a5 received now, not assigned yet
    page            a3, a2, a1, a5 (oldest first); 4 not resolved: 2 open, 2 acknowledged,
                    1 overdue; levels Line lead (anna, ben; 5 min), Shift manager (clara,
                    anna; 20 min), level 3 (dora; 1 h)
lyon: one open alert, no policy on record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import Session

from axtrace import ownership, policyhistory
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import AlertCreate, utcnow
from axtrace.settings import get_settings
from axtrace.testing import pinned_policy
from tests.reliability.test_access import (
    INTAKE_TOKEN,
    bearer,
    call,
    ledger,  # noqa: F401  (the fixture, by name)
    new_token,
    where,
)

PAGES = ["/v1/sites", "/v1/sites/berlin", "/v1/sites/berlin/policy-history"]
FIRST = pinned_policy()
FASTER = pinned_policy(levels={1: {"acknowledge_within": "5m"}})


@pytest.fixture(autouse=True)
def prefect_away() -> Iterator[None]:
    """Nothing listens on port 1: every look-up of a policy block fails at once."""
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:1/api"}):
        yield


def write(url: str, site: str, received: datetime, **state: Any) -> int:
    with Session(engine_for(url)) as session:
        row = repo.create_alert(session=session, actor="test", dispatch=False, at=received,
                                alert=AlertCreate(site=site, key=f"{site}-{received}",
                                                  title=f"Crack at {site}"))
        for name, value in state.items():
            setattr(row, name, value)
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


@pytest.fixture
def berlin(ledger: str) -> dict[str, Any]:  # noqa: F811
    now = utcnow().replace(microsecond=0)
    with Session(engine_for(ledger)) as session:
        for policy, ago in ((FIRST, 2), (FASTER, 1)):
            policyhistory.record(session, site="berlin", policy=policy, origin="sites apply",
                                 actor="ops", where="/srv/sites.yaml",
                                 at=now - timedelta(hours=ago))
        session.commit()
    ids = {
        "a1": write(ledger, "berlin", now - timedelta(minutes=1), policy=FASTER, level=1,
                    ack_deadline=now + timedelta(minutes=4),
                    resolve_deadline=now + timedelta(hours=4), policy_version="v-faster"),
        "a2": write(ledger, "berlin", now - timedelta(minutes=30), policy=FIRST, level=2,
                    status="acknowledged", acknowledged_by="clara",
                    resolve_deadline=now + timedelta(hours=1),
                    remind_at=now + timedelta(minutes=10)),
        "a3": write(ledger, "berlin", now - timedelta(hours=5), policy=FIRST, level=3,
                    status="acknowledged", overdue_at=now - timedelta(minutes=5)),
        "a4": write(ledger, "berlin", now - timedelta(hours=6), policy=FIRST, level=1,
                    status="closed", open_key=None),
        "a5": write(ledger, "berlin", now),
        "l1": write(ledger, "lyon", now),
    }
    return {"now": now, **ids}


def test_the_page_shows_policy_on_call_open_alerts_and_the_last_change(
    berlin: dict[str, Any],
) -> None:
    answer = call("GET", "/v1/sites/berlin")
    assert answer.status_code == 200, answer.text
    page = answer.json()
    policy = page["policy"]
    assert (policy["version"], policy["source"], policy["on_record"]) == (
        ownership.version(FASTER), "ledger", True)
    assert (policy["owning_team"], policy["resolve_within_s"]) == ("Berlin line quality", 14400)
    assert [(lv["level"], lv["name"], lv["on_call"]["names"], lv["acknowledge_within_s"])
            for lv in policy["levels"]] == [
        (1, "Line lead", ["anna", "ben"], 300), (2, "Shift manager", ["clara", "anna"], 1200),
        (3, "level 3", ["dora"], 3600)]
    assert {lv["on_call"]["source"] for lv in policy["levels"]} == {"responders"}
    assert [a["id"] for a in page["open_alerts"]] == [berlin[k] for k in ("a3", "a2", "a1",
                                                                           "a5")]
    assert page["counts"] == {"total": 4, "open": 2, "acknowledged": 2, "ignored": 0,
                              "overdue": 1}
    change = page["last_policy_change"]
    assert (change["seq"], change["origin"], change["actor"], change["changes"]) == (
        2, "sites apply", "ops", [{"field": "escalation_chain.0.acknowledge_within",
                                   "kind": "changed", "before": "10m", "after": "5m"}])


def test_each_open_alert_has_its_level_status_and_deadlines(berlin: dict[str, Any]) -> None:
    now = berlin["now"]
    alerts = {a["id"]: a for a in call("GET", "/v1/sites/berlin").json()["open_alerts"]}
    a1, a2, a3, a5 = (alerts[berlin[k]] for k in ("a1", "a2", "a3", "a5"))
    assert (a1["status"], a1["level"], a1["level_name"], a1["may_act"]) == (
        "open", 1, "Line lead", ["anna", "ben"])
    assert datetime.fromisoformat(a1["ack_deadline"]) == now + timedelta(minutes=4)
    assert a1["policy_version"] == "v-faster", "the policy pinned on the alert, not today's"
    assert (a2["status"], a2["level_name"], a2["may_act"], a2["acknowledged_by"]) == (
        "acknowledged", "Shift manager", ["anna", "ben", "clara"], "clara")
    assert datetime.fromisoformat(a2["remind_at"]) == now + timedelta(minutes=10)
    assert datetime.fromisoformat(a2["resolve_deadline"]) == now + timedelta(hours=1)
    assert datetime.fromisoformat(a3["overdue_at"]) == now - timedelta(minutes=5)
    assert (a5["level"], a5["level_name"], a5["may_act"], a5["ack_deadline"]) == (
        0, None, [], None)


def test_the_list_shows_each_site_with_its_version_and_counts(berlin: dict[str, Any]) -> None:
    listed = call("GET", "/v1/sites").json()
    assert [(s["site"], s["policy_version"], s["owning_team"], s["open_alerts"]["total"],
             s["open_alerts"]["overdue"]) for s in listed] == [
        ("berlin", ownership.version(FASTER), "Berlin line quality", 4, 1),
        ("lyon", None, None, 1, 0)]


def test_policy_history_is_newest_first(berlin: dict[str, Any]) -> None:
    history = call("GET", "/v1/sites/berlin/policy-history").json()
    assert [(e["seq"], e["old_version"], e["new_version"]) for e in history] == [
        (2, ownership.version(FIRST), ownership.version(FASTER)),
        (1, None, ownership.version(FIRST))]
    assert not {"policy", "hash", "prev_hash"} & set(history[0])
    assert [e["seq"] for e in call("GET", "/v1/sites/berlin/policy-history?limit=1").json()
            ] == [2]
    assert call("GET", "/v1/sites/lyon/policy-history").json() == []


@pytest.mark.parametrize("path", ["/v1/sites/paris", "/v1/sites/paris/policy-history"])
def test_an_unknown_site_is_404_naming_the_site(berlin: dict[str, Any], path: str) -> None:
    answer = call("GET", path)
    assert where(answer) == (404, "site")
    assert answer.json()["detail"][0]["msg"] == "no site 'paris'"
    assert answer.json()["detail"][0]["loc"] == ["path", "site"]


@pytest.mark.parametrize(("path", "field"), [
    ("/v1/sites/" + "x" * 64, "site"), ("/v1/sites/berlin/policy-history?limit=0", "limit"),
    ("/v1/sites/berlin/policy-history?limit=many", "limit")])
def test_bad_input_is_422_naming_the_field(berlin: dict[str, Any], path: str,
                                           field: str) -> None:
    assert where(call("GET", path)) == (422, field)


def test_closed_every_page_needs_a_credential_and_read_only_tokens_may_read(
    berlin: dict[str, Any], ledger: str, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    monkeypatch.setenv("AXTRACE_INTAKE_TOKEN", INTAKE_TOKEN)
    get_settings.cache_clear()
    reader = new_token(ledger, "dashboard", scope="read")
    responder = new_token(ledger, "anna")
    for path in PAGES:
        anonymous = call("GET", path)
        assert where(anonymous) == (401, "authorization"), path
        assert "berlin" not in anonymous.text.replace(path, "")
        assert where(call("GET", path, headers=bearer("axt_guessed"))) == (401, "authorization")
        for credential in (bearer(INTAKE_TOKEN), reader, responder):
            assert call("GET", path, headers=credential).status_code == 200, path


def test_a_token_for_one_site_sees_that_site_only(
    berlin: dict[str, Any], ledger: str,  # noqa: F811
) -> None:
    lead = new_token(ledger, "lena", sites=["lyon"], scope="read")
    assert [s["site"] for s in call("GET", "/v1/sites", headers=lead).json()] == ["lyon"]
    assert call("GET", "/v1/sites/lyon", headers=lead).json()["counts"]["total"] == 1
    for path in PAGES[1:]:
        other = call("GET", path, headers=lead)
        assert where(other) == (404, "site"), path
        assert other.json()["detail"][0]["msg"] == "no site 'berlin'", "as if it did not exist"
        assert not [w for w in ("Crack", "anna") if w in other.text]
