"""The response's decisions: what comes next, and how each answer is taken."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from sqlmodel import Session

from axtrace import ownership, workflow
from axtrace.ledger import repo
from axtrace.ledger.db import engine_for
from axtrace.ledger.models import Alert, AlertCreate, Status, TraceEntry, utcnow
from axtrace.testing import wait_until
from axtrace.workflow import Answer, Phase
from axtrace_blocks import OwnershipPolicy
from tests.unit.conftest import POLICY


def assigned_alert(ledger: str, *, level: int = 1, overdue: bool = False, key: str = "k") -> int:
    pinned = ownership.snapshot(OwnershipPolicy.model_validate(POLICY))
    with Session(engine_for(ledger)) as session:
        alert = repo.create_alert(session=session, actor="t", dispatch=False,
                                  alert=AlertCreate(site="berlin-plant", key=key, title="x"))
        alert.policy, alert.level, alert.notified_level = pinned, level, level
        shift = timedelta(seconds=-30 if overdue else 600)
        alert.ack_deadline = utcnow() + shift
        session.add(alert)
        session.commit()
        assert alert.id is not None
        return alert.id


def load(alert_id: int) -> Alert:
    return workflow.load_alert(alert_id)


@pytest.mark.parametrize(("fields", "phase"), [
    ({"status": "open", "level": 0}, Phase.ASSIGN),
    ({"status": "open", "level": 2, "notified_level": 1}, Phase.NOTIFY),
    ({"status": "open", "level": 1, "notified_level": 1}, Phase.ACKNOWLEDGE),
    ({"status": "acknowledged", "level": 1, "notified_level": 1}, Phase.RESOLVE),
    ({"status": "ignored", "level": 3, "notified_level": 3}, Phase.RESOLVE),
    ({"status": "resolved", "level": 1, "notified_level": 1}, Phase.CLOSE),
    ({"status": "closed", "level": 1, "notified_level": 1}, Phase.DONE),
])
def test_the_next_phase_follows_from_where_the_alert_stands(
    fields: dict[str, Any], phase: Phase,
) -> None:
    alert = Alert(site="s", key="k", title="t", received_at=utcnow(), **fields)
    assert workflow.decide(alert) is phase


def test_the_pause_key_names_the_phase_and_the_answers_taken_so_far() -> None:
    alert = Alert(site="s", key="k", title="t", received_at=utcnow(), wait_seq=3)
    assert workflow.pause_key(alert, Phase.ACKNOWLEDGE) == "acknowledge-3"


def test_a_responder_at_the_level_acknowledges(ledger: str) -> None:
    alert_id = assigned_alert(ledger)
    step = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="ben"))
    alert = load(alert_id)
    assert step == "acknowledged"
    assert (alert.status, alert.acknowledged_by, alert.ack_deadline) == ("acknowledged", "ben",
                                                                         None)


def test_each_step_taken_emits_one_prefect_event_about_the_alert_and_its_site(
    ledger: str, events: Any,
) -> None:
    alert_id = assigned_alert(ledger)
    workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="ben"))

    def emitted_so_far() -> list[Any]:
        events.drain()  # the worker sends from its own thread: wait for it, briefly
        client = getattr(events, "_client", None)
        found = client.events if client is not None else []
        return [e for e in found if e.event.startswith("axtrace.alert.")]

    emitted = wait_until(emitted_so_far, timeout=20, interval=0.2, what="the event sent")
    assert [e.event for e in emitted] == ["axtrace.alert.acknowledged"]
    assert emitted[0].resource.id == f"axtrace.alert.{alert_id}"
    assert emitted[0].resource["axtrace.site"] == "berlin-plant"
    assert {r.id: r.role for r in emitted[0].related}["axtrace.site.berlin-plant"] == "site"
    assert emitted[0].payload["actor"] == "ben"


def test_an_answer_is_taken_once_even_when_the_run_replays(ledger: str) -> None:
    alert_id = assigned_alert(ledger)
    workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="ben"))
    again = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="anna"))
    with Session(engine_for(ledger)) as session:
        steps = [e.step for e in repo.trace_of(session=session, alert_id=alert_id)]
    assert again is None  # nothing taken
    assert steps == ["received", "acknowledged"]
    assert load(alert_id).acknowledged_by == "ben"


def test_someone_not_in_the_chain_is_refused_and_the_alert_stays_open(ledger: str) -> None:
    alert_id = assigned_alert(ledger)
    step = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="mallory"))
    alert = load(alert_id)
    assert step == "refused"
    assert alert.status == Status.OPEN
    assert alert.wait_seq == 1


def test_an_empty_answer_before_the_deadline_is_refused_not_escalated(ledger: str) -> None:
    alert_id = assigned_alert(ledger)
    step = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer())
    assert step == "refused"
    assert load(alert_id).level == 1


def test_the_deadline_wake_escalates_to_the_next_level_with_its_own_deadline(ledger: str) -> None:
    alert_id = assigned_alert(ledger, overdue=True)
    step = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer())
    alert = load(alert_id)
    assert step == "escalated"
    assert alert.level == 2
    assert alert.notified_level == 1
    assert alert.ack_deadline is not None
    assert timedelta(minutes=19) < alert.ack_deadline - utcnow() <= timedelta(minutes=20)
    assert workflow.decide(alert) is Phase.NOTIFY


def test_the_last_levels_deadline_marks_the_alert_ignored_and_open_for_resolution(
    ledger: str,
) -> None:
    alert_id = assigned_alert(ledger, level=3, overdue=True)
    step = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer())
    alert = load(alert_id)
    assert step == "ignored"
    assert alert.status == Status.IGNORED
    assert workflow.decide(alert) is Phase.RESOLVE


def test_an_acknowledgement_given_after_the_deadline_is_recorded_as_late(ledger: str) -> None:
    alert_id = assigned_alert(ledger, overdue=True)
    workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="anna"))
    with Session(engine_for(ledger)) as session:
        last = repo.trace_of(session=session, alert_id=alert_id)[-1]
    assert last.step == "acknowledged"
    assert last.detail["late_by_s"] >= 30


def test_a_resolution_needs_an_outcome(ledger: str) -> None:
    alert_id = assigned_alert(ledger)
    workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="anna"))
    refused = workflow.take_answer(alert_id, Phase.RESOLVE, 1, Answer(responder="anna"))
    resolved = workflow.take_answer(alert_id, Phase.RESOLVE, 2,
                                    Answer(responder="anna", outcome="fixed"))
    assert (refused, resolved) == ("refused", "resolved")
    assert load(alert_id).outcome == "fixed"


def test_the_workflow_version_is_the_package_version_and_a_hash_of_the_code() -> None:
    version = workflow.workflow_version()
    assert version.startswith("0.1.0+")
    assert len(version.split("+")[1]) == 10


# --------------------------------------------------------------------------- untrusted text

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
MARKUP = ("[x](http://evil.example)", "![p](http://evil.example/p.png)", "<img src=x>",
          "| 9 | 2026-01-01 00:00:00 | resolved | mallory |", "\n| 9 | fake | row | x |\n",
          "**b** `c` ~~s~~ # h", "\x1b[2J\x00", "https://evil.example www.evil.example")
FIELD = st.lists(st.text(max_size=5) | st.sampled_from(MARKUP), max_size=5).map("".join)


def markdown_tokens(markdown: str) -> list[str]:
    return [t.type for t in MD.parse(markdown)] + [
        c.type for t in MD.parse(markdown) if t.children for c in t.children]


@given(title=FIELD, site=FIELD, detector=FIELD, actor=FIELD, owner=FIELD)
@settings(max_examples=60)
def test_the_artifact_shows_any_alert_text_as_text_in_one_trace_table(
    title: str, site: str, detector: str, actor: str, owner: str,
) -> None:
    alert = Alert(id=7, site=site, key="k", title=title, detector=detector, owner=owner,
                  received_at=utcnow(), level=1, evidence_url="https://x.example/e?a=(1)")
    trace = [TraceEntry(seq=n, step="received", actor=actor, at=utcnow(), detail={})
             for n in (1, 2)]
    markdown = workflow.artifact_markdown(alert, trace, "Waiting.")
    tokens = markdown_tokens(markdown)
    assert tokens.count("table_open") == 1
    assert tokens.count("tr_open") == 3, "the header and one row per step, nothing more"
    assert tokens.count("link_open") == 1, "the evidence link only"
    assert not {"image", "html_inline", "html_block", "code_inline", "em_open", "s_open",
                "bullet_list_open", "blockquote_open"} & set(tokens)
    assert tokens.count("heading_open") == 1
    assert "\x1b" not in markdown
    assert "\x00" not in markdown


def test_the_artifact_heading_and_rows_read_as_the_alerts_text() -> None:
    alert = Alert(id=7, site="berlin-plant", key="k", title="[click](http://evil.example)",
                  received_at=utcnow(), level=1, owner="ops", evidence_url="javascript:x()")
    trace = [TraceEntry(seq=1, step="received", actor="mallory | 2 | x", at=utcnow(),
                        detail={})]
    tokens = MD.parse(workflow.artifact_markdown(alert, trace, "Waiting."))
    heading = next(t for i, t in enumerate(tokens) if i and tokens[i - 1].type == "heading_open")
    assert "".join(c.content for c in heading.children or []) == \
        "Alert 7 at berlin-plant: [click](http://evil.example)"
    cells = ["".join(c.content for c in t.children or []) for t in tokens if t.type == "inline"]
    assert cells[-4:] == ["1", cells[-3], "received", "mallory | 2 | x"]
    assert "link_open" not in markdown_tokens(workflow.artifact_markdown(alert, trace, ""))


def test_the_resume_form_shows_title_and_responders_as_text(ledger: str) -> None:
    policy = {**POLICY, "escalation_chain": [
        {"responders": ["[anna](http://evil.example)", "ben"], "acknowledge_within": "10m"}]}
    pinned = ownership.snapshot(OwnershipPolicy.model_validate(policy))
    alert = Alert(id=7, site="berlin-plant", key="k", title="![x](http://e.example/p.png)",
                  received_at=utcnow(), level=1, policy=pinned)
    form = workflow.answer_form(alert, Phase.ACKNOWLEDGE)
    tokens = markdown_tokens(form._description)
    assert "image" not in tokens
    assert "link_open" not in tokens
    assert "[anna](http://evil.example), ben" in "".join(
        c.content for t in MD.parse(form._description) if t.children for c in t.children)


# --------------------------------------------------------------------------- notifications


def alert_to_notify(ledger: str, policy: dict[str, Any], title: str = "Crack") -> int:
    alert_id = assigned_alert(ledger)
    pinned = ownership.snapshot(OwnershipPolicy.model_validate(policy))
    with Session(engine_for(ledger)) as session:
        alert = repo.get_alert(session=session, alert_id=alert_id)
        alert.policy, alert.notified_level, alert.title = pinned, 0, title
        session.add(alert)
        session.commit()
    return alert_id


@pytest.mark.parametrize("template", [
    "{{ 1 / 0 }}", "{{ 2.0 ** 100000 }}", "{{ alert.title + 1 }}", "{{ 10 ** (10 ** 10) }}",
    "{{ ''.__class__.__mro__ }}", "{% for i in range(100000) %}{% for j in range(100000) %}"
    "{% endfor %}{% endfor %}",
])
def test_a_failing_template_is_recorded_on_notified_and_the_standard_text_is_used(
    ledger: str, template: str,
) -> None:
    alert_id = alert_to_notify(ledger, {**POLICY, "notification_template": template})
    deadline = load(alert_id).ack_deadline
    detail = workflow.notify(alert_id)
    with Session(engine_for(ledger)) as session:
        last = repo.trace_of(session=session, alert_id=alert_id)[-1]
    assert last.step == "notified"
    assert last.detail["text"] == "standard"
    assert last.detail["template_error"] == detail["template_error"]
    assert last.detail["template_error"].split(":")[0] in (
        "ZeroDivisionError", "OverflowError", "TypeError", "RenderLimit", "SecurityError")
    assert (last.detail["channel"], last.detail["delivered"]) == ("ledger", False)
    alert = load(alert_id)
    assert (alert.notified_level, alert.ack_deadline) == (1, deadline), "the clock runs on"
    assert workflow.decide(alert) is Phase.ACKNOWLEDGE


def test_the_notification_neutralises_mass_mentions_in_alert_fields(ledger: str) -> None:
    alert_id = alert_to_notify(ledger, {**POLICY, "allow_mass_mentions": True,
                                        "notification_template": "@here {{ alert.title }}"},
                               title="@channel <!everyone> look")
    message = workflow.notification(load(alert_id), ["anna"])
    assert message.body == "@here @\u200bchannel <\u200b!everyone> look"
    assert workflow.notify(alert_id)["text"] == "policy"


# --------------------------------------------------------------- deadlines of acknowledged alerts

NOW = utcnow()
REMINDING = {**POLICY, "escalation_chain": [
    {**level, "remind_every": "30m"} if n == 1 else level
    for n, level in enumerate(POLICY["escalation_chain"])]}  # type: ignore[attr-defined]
"""POLICY whose level 2 is reminded every 30 minutes."""


def standing(status: str, level: int = 1, **fields: Any) -> Alert:
    """An alert at ``level`` under ``REMINDING``; deadlines given in minutes from ``NOW``."""
    at = {name: NOW + timedelta(minutes=fields.pop(name)) for name in
          ("ack_deadline", "resolve_deadline", "remind_at", "overdue_at") if name in fields}
    pinned = ownership.snapshot(OwnershipPolicy.model_validate(REMINDING))
    return Alert(site="s", key="k", title="t", received_at=NOW, status=status, level=level,
                 notified_level=level, policy=pinned, **at, **fields)


@pytest.mark.parametrize(("alert", "due"), [
    (standing("open", ack_deadline=-1), "escalated"),
    (standing("open", level=3, ack_deadline=-1), "ignored"),
    (standing("open", ack_deadline=1, resolve_deadline=-1), None),
    (standing("acknowledged", resolve_deadline=-1), "escalated"),
    (standing("acknowledged", level=3, resolve_deadline=-1), "overdue"),
    (standing("acknowledged", level=3, resolve_deadline=-9, overdue_at=-1), None),
    (standing("acknowledged", level=3, resolve_deadline=-9, overdue_at=-1, remind_at=-1),
     "reminded"),
    (standing("acknowledged", resolve_deadline=10, remind_at=-1), "reminded"),
    (standing("acknowledged", resolve_deadline=-1, remind_at=-1), "escalated"),
    (standing("acknowledged", resolve_deadline=10, remind_at=1), None),
    (standing("ignored", level=3, resolve_deadline=-1), None),
    (standing("resolved", resolve_deadline=-1, remind_at=-1), None),
], ids=["ack-passed", "ack-passed-last-level", "ack-pending", "resolve-passed",
        "resolve-passed-last-level", "already-overdue", "overdue-still-reminded",
        "reminder-due", "deadline-before-reminder", "nothing-due", "ignored-never-escalates",
        "resolved"])
def test_a_wake_without_an_answer_does_what_is_due_at_that_moment(
    alert: Alert, due: str | None,
) -> None:
    assert workflow.deadline_step(alert, NOW) == due


@pytest.mark.parametrize(("alert", "minutes"), [
    (standing("open", ack_deadline=5, resolve_deadline=1), 5),
    (standing("acknowledged", resolve_deadline=5), 5),
    (standing("acknowledged", resolve_deadline=5, remind_at=2), 2),
    (standing("acknowledged", level=3, resolve_deadline=-5, overdue_at=-1), None),
    (standing("acknowledged", level=3, resolve_deadline=-5, overdue_at=-1, remind_at=3), 3),
    (standing("ignored", level=3, resolve_deadline=5), None),
    (standing("closed", resolve_deadline=5), None),
], ids=["open", "acknowledged", "reminder-first", "overdue", "overdue-reminded", "ignored",
        "closed"])
def test_the_run_is_woken_at_the_first_thing_due_and_never_once_nothing_is(
    alert: Alert, minutes: int | None,
) -> None:
    expected = None if minutes is None else NOW + timedelta(minutes=minutes)
    assert workflow.wake_at(alert) == expected


def acknowledged_alert(
    ledger: str, *, level: int = 1, resolve_in: float = 600, key: str = "k",
) -> int:
    """An alert under ``REMINDING`` acknowledged at ``level``, its resolve deadline
    ``resolve_in`` seconds away (its reminder, if any, as the acknowledgement set it)."""
    alert_id = assigned_alert(ledger, level=level, key=key)
    with Session(engine_for(ledger)) as session:
        alert = repo.get_alert(session=session, alert_id=alert_id)
        alert.policy = ownership.snapshot(OwnershipPolicy.model_validate(REMINDING))
        session.add(alert)
        session.commit()
    workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer(responder="anna"))
    with Session(engine_for(ledger)) as session:
        alert = repo.get_alert(session=session, alert_id=alert_id)
        alert.resolve_deadline = utcnow() + timedelta(seconds=resolve_in)
        session.add(alert)
        session.commit()
    return alert_id


def trace(ledger: str, alert_id: int) -> list[Any]:
    with Session(engine_for(ledger)) as session:
        return list(repo.trace_of(session=session, alert_id=alert_id))


def test_the_resolve_deadline_wake_escalates_with_a_fresh_resolve_window(ledger: str) -> None:
    alert_id = acknowledged_alert(ledger, resolve_in=-30)

    step = workflow.take_answer(alert_id, Phase.RESOLVE, 1, Answer())

    alert = load(alert_id)
    escalated = trace(ledger, alert_id)[-1]
    assert step == "escalated"
    assert escalated.detail["reason"] == "resolve deadline passed"
    assert escalated.detail["late_by_s"] >= 30
    assert (escalated.detail["from_level"], escalated.detail["to_level"]) == (1, 2)
    assert escalated.detail["responders"] == ["clara", "anna"]
    assert (alert.status, alert.level, alert.acknowledged_by) == ("acknowledged", 2, "anna")
    assert alert.resolve_deadline is not None
    assert timedelta(hours=3, minutes=59) < alert.resolve_deadline - utcnow() <= timedelta(
        hours=4), "the policy's resolve_within again, counted from the escalation"
    assert alert.remind_at is not None, "level 2 is reminded every 30 minutes"
    assert workflow.decide(alert) is Phase.NOTIFY
    assert ownership.may_act(alert.policy or {}, alert.level, "clara"), "level 2 may resolve"


def test_the_level_that_takes_over_is_notified_of_its_resolve_deadline(ledger: str) -> None:
    alert_id = acknowledged_alert(ledger, resolve_in=-30)
    workflow.take_answer(alert_id, Phase.RESOLVE, 1, Answer())

    detail = workflow.notify(alert_id)

    alert = load(alert_id)
    assert (detail["level"], detail["responders"]) == (2, ["clara", "anna"])
    assert detail["resolve_deadline"] == alert.resolve_deadline
    assert "Resolve by" in workflow.notification(alert, ["clara"]).body
    assert workflow.decide(alert) is Phase.RESOLVE


def test_the_last_levels_resolve_deadline_marks_the_alert_overdue_once_and_it_stays_open(
    ledger: str,
) -> None:
    alert_id = acknowledged_alert(ledger, level=3, resolve_in=-30)

    marked = workflow.take_answer(alert_id, Phase.RESOLVE, 1, Answer())
    again = workflow.take_answer(alert_id, Phase.RESOLVE, 2, Answer())
    resolved = workflow.take_answer(alert_id, Phase.RESOLVE, 3,
                                    Answer(responder="dora", outcome="fixed"))

    steps = [e.step for e in trace(ledger, alert_id)]
    assert (marked, again, resolved) == ("overdue", "refused", "resolved")
    assert steps[-3:] == ["overdue", "refused", "resolved"]
    assert trace(ledger, alert_id)[-3].detail["late_by_s"] >= 30
    alert = load(alert_id)
    assert alert.level == 3, "nothing is escalated past the last level"
    assert alert.overdue_at is not None
    assert alert.outcome == "fixed"


def test_a_due_reminder_notifies_the_level_again_without_escalating(ledger: str) -> None:
    alert_id = acknowledged_alert(ledger, level=2)
    acknowledged = load(alert_id)
    assert acknowledged.remind_at is not None
    assert timedelta(minutes=29) < acknowledged.remind_at - utcnow() <= timedelta(minutes=30)
    with Session(engine_for(ledger)) as session:
        alert = repo.get_alert(session=session, alert_id=alert_id)
        alert.remind_at = utcnow() - timedelta(seconds=5)
        session.add(alert)
        session.commit()

    step = workflow.take_answer(alert_id, Phase.RESOLVE, 1, Answer())

    reminded = trace(ledger, alert_id)[-1]
    alert = load(alert_id)
    assert step == "reminded"
    assert (reminded.detail["level"], reminded.detail["responders"]) == (2, ["clara", "anna"])
    assert (reminded.detail["channel"], reminded.detail["delivered"]) == ("ledger", False)
    assert reminded.detail["late_by_s"] >= 5
    assert alert.level == 2
    assert alert.remind_at is not None
    assert timedelta(minutes=29) < alert.remind_at - utcnow() <= timedelta(minutes=30)


def test_a_level_without_reminders_is_never_reminded(ledger: str) -> None:
    alert_id = acknowledged_alert(ledger, level=1)
    assert load(alert_id).remind_at is None
    assert workflow.take_answer(alert_id, Phase.RESOLVE, 1, Answer()) == "refused"


def test_resolving_ends_the_reminders(ledger: str) -> None:
    alert_id = acknowledged_alert(ledger, level=2)
    workflow.take_answer(alert_id, Phase.RESOLVE, 1, Answer(responder="clara", outcome="fixed"))
    alert = load(alert_id)
    assert alert.remind_at is None
    assert workflow.wake_at(alert) is None


def test_the_ledger_finds_exactly_the_waits_wake_at_says_are_due(ledger: str) -> None:
    open_due = assigned_alert(ledger, overdue=True, key="a")
    resolve_due = acknowledged_alert(ledger, resolve_in=-5, key="b")
    reminded = acknowledged_alert(ledger, level=2, key="c")
    not_due = acknowledged_alert(ledger, level=2, key="d")
    overdue = acknowledged_alert(ledger, level=3, resolve_in=-5, key="e")
    workflow.take_answer(overdue, Phase.RESOLVE, 1, Answer())
    with Session(engine_for(ledger)) as session:
        for alert_id in (open_due, resolve_due, reminded, not_due, overdue):
            alert = repo.get_alert(session=session, alert_id=alert_id)
            alert.flow_run_id = f"run-{alert_id}"
            if alert_id == reminded:
                alert.remind_at = utcnow() - timedelta(seconds=1)
            session.add(alert)
        session.commit()
        now = utcnow()
        everyone = [repo.get_alert(session=session, alert_id=a) for a in
                    (open_due, resolve_due, reminded, not_due, overdue)]
        found = {a.id for a in repo.due_waits(session=session, now=now)}
    assert found == {open_due, resolve_due, reminded}
    assert found == {a.id for a in everyone if (w := workflow.wake_at(a)) and w <= now}


# --------------------------------------------------------------------------- on-call calendars


def shift_calendar(path: Any, *shifts: tuple[str, int, int]) -> str:
    """An iCalendar file of shifts ``(attendee CN, start s, end s)`` relative to now."""
    now = utcnow()
    stamp = "%Y%m%dT%H%M%SZ"
    events = "".join(
        f"BEGIN:VEVENT\nUID:{i}@t\nDTSTAMP:{now:{stamp}}\n"
        f"DTSTART:{now + timedelta(seconds=start):{stamp}}\n"
        f"DTEND:{now + timedelta(seconds=end):{stamp}}\nSUMMARY:shift\n"
        f"ATTENDEE;CN={name}:mailto:{name}@example.com\nEND:VEVENT\n"
        for i, (name, start, end) in enumerate(shifts))
    path.write_text(f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\n{events}END:VCALENDAR\n")
    return str(path)


def alert_with_chain(ledger: str, chain: list[dict[str, Any]]) -> int:
    alert_id = assigned_alert(ledger, overdue=True)
    policy = OwnershipPolicy.model_validate({**POLICY, "escalation_chain": chain})
    with Session(engine_for(ledger)) as session:
        alert = repo.get_alert(session=session, alert_id=alert_id)
        alert.policy = ownership.snapshot(policy)
        session.add(alert)
        session.commit()
    return alert_id


def test_an_escalation_pins_who_is_on_call_and_only_they_may_act(
        ledger: str, tmp_path: Any) -> None:
    calendar = shift_calendar(tmp_path / "l2.ics", ("olga", -60, 600), ("paul", -600, -60))
    alert_id = alert_with_chain(ledger, [
        {"responders": ["anna"], "acknowledge_within": "10m"},
        {"responders": ["clara"], "oncall_calendar": calendar, "acknowledge_within": "20m"},
    ])
    assert workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer()) == "escalated"
    alert = load(alert_id)
    assert (alert.level, alert.on_call) == (2, {"2": ["olga"]})
    escalated = trace(ledger, alert_id)[-1].detail
    assert escalated["responders"] == ["olga"]
    assert escalated["on_call"] == {"level": 2, "names": ["olga"], "source": "calendar",
                                    "calendar": calendar}
    for off_shift in ("paul", "clara"):  # shift over; the fallback, not used
        refused = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, load(alert_id).wait_seq,
                                       Answer(responder=off_shift))
        assert refused == "refused"
    assert trace(ledger, alert_id)[-1].detail["allowed"] == ["anna", "olga"]
    taken = workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, load(alert_id).wait_seq,
                                 Answer(responder="olga"))
    assert taken == "acknowledged"


def test_a_level_with_nobody_and_no_responders_is_skipped_and_recorded(
        ledger: str, tmp_path: Any) -> None:
    alert_id = alert_with_chain(ledger, [
        {"responders": ["anna"], "acknowledge_within": "10m"},
        {"oncall_calendar": str(tmp_path / "missing.ics"), "acknowledge_within": "20m"},
        {"responders": ["dora"], "acknowledge_within": "1h"},
    ])
    assert workflow.take_answer(alert_id, Phase.ACKNOWLEDGE, 0, Answer()) == "escalated"
    alert = load(alert_id)
    assert (alert.level, alert.on_call) == (3, {"2": [], "3": ["dora"]})
    detail = trace(ledger, alert_id)[-1].detail
    assert (detail["from_level"], detail["to_level"], detail["responders"]) == (1, 3, ["dora"])
    skipped = detail["skipped"][0]
    assert (skipped["level"], skipped["source"]) == (2, "nobody")
    assert "FileNotFoundError" in skipped["reason"]
    assert ownership.responders(alert.policy or {}, 3, alert.on_call) == ["anna", "dora"]


def test_an_alert_assigned_past_skipped_levels_needs_no_escalated_step() -> None:
    from axtrace.reports.verify import implied_steps

    state: Any = type("State", (), {"level": 2, "notified_level": 2, "acknowledged_at": None,
                                    "status": "open", "resolved_at": None,
                                    "overdue_at": None, "suppressed_until": None})()
    assert "escalated" not in implied_steps(state, assigned_level=2)
    assert "escalated" in implied_steps(state)
