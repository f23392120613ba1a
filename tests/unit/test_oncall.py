"""Specification of on-call calendars: who is on call at an instant (pure, over a calendar of
weekly shifts, an override and summaries), what a level falls back to, and the reader of
files and feeds (a real file, a real loopback HTTP server)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from icalendar import Calendar

from axtrace import oncall
from axtrace.outbound import RefusedTarget

# Weekly shifts from Monday 2026-11-30: Carol (ATTENDEE with CN) days Mon-Wed 08:00-20:00,
# Dave (ATTENDEE without CN) nights every day 20:00-08:00; on Wednesday 2026-12-02 Erin
# takes Carol's day (an override of that one occurrence); weekends are written in the
# summary; Thursday and Friday days have nobody.
SHIFTS = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//axtrace tests//EN
BEGIN:VEVENT
UID:day@test
DTSTART:20261130T080000Z
DTEND:20261130T200000Z
RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE
SUMMARY:Day shift
ATTENDEE;CN=Carol Day:mailto:carol@example.com
END:VEVENT
BEGIN:VEVENT
UID:day@test
RECURRENCE-ID:20261202T080000Z
DTSTART:20261202T080000Z
DTEND:20261202T200000Z
SUMMARY:Day shift (swap)
ATTENDEE:mailto:erin@example.com
END:VEVENT
BEGIN:VEVENT
UID:night@test
DTSTART:20261130T200000Z
DTEND:20261201T080000Z
RRULE:FREQ=DAILY
SUMMARY:Night shift
ATTENDEE:mailto:dave.night@example.com
END:VEVENT
BEGIN:VEVENT
UID:weekend@test
DTSTART:20261205T080000Z
DTEND:20261205T200000Z
RRULE:FREQ=WEEKLY;BYDAY=SA,SU
SUMMARY:On call: frank
END:VEVENT
END:VCALENDAR
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def shifts() -> Calendar:
    return Calendar.from_ical(SHIFTS)


def test_a_weekly_shift_names_its_attendees_cn_in_any_later_week(shifts: Calendar) -> None:
    assert oncall.on_call_at(shifts, at("2026-11-30T10:00")) == ["Carol Day"]
    assert oncall.on_call_at(shifts, at("2027-01-12T19:59")) == ["Carol Day"]  # a Tuesday


def test_an_attendee_without_cn_is_the_local_part_of_the_address(shifts: Calendar) -> None:
    assert oncall.on_call_at(shifts, at("2026-12-08T23:00")) == ["dave.night"]
    assert oncall.on_call_at(shifts, at("2026-12-09T07:59")) == ["dave.night"]


def test_an_override_replaces_that_occurrence_only(shifts: Calendar) -> None:
    assert oncall.on_call_at(shifts, at("2026-12-02T10:00")) == ["erin"]
    assert oncall.on_call_at(shifts, at("2026-12-09T10:00")) == ["Carol Day"]


def test_a_summary_is_the_person_and_the_pattern_takes_the_name_out_of_it(
        shifts: Calendar) -> None:
    saturday = at("2026-12-12T12:00")
    assert oncall.on_call_at(shifts, saturday) == ["On call: frank"]
    assert oncall.on_call_at(shifts, saturday, r"On call: (\w+)") == ["frank"]
    assert oncall.on_call_at(shifts, saturday, r"Standby: (\w+)") == []


def test_a_shift_ends_when_it_ends(shifts: Calendar) -> None:
    assert oncall.on_call_at(shifts, at("2026-11-30T20:00")) == ["dave.night"]
    assert oncall.on_call_at(shifts, at("2026-11-30T19:59:59")) == ["Carol Day"]


def test_nobody_on_call_falls_back_to_the_responders_and_says_why(shifts: Calendar) -> None:
    thursday = at("2026-12-03T10:00")
    assert oncall.on_call_at(shifts, thursday) == []
    level = {"responders": ["lead"], "oncall_calendar": "/cal.ics"}
    found = oncall.decide(1, level, shifts, thursday)
    assert (found.names, found.source) == (["lead"], "responders")
    assert found.reason == ("nobody on call at 2026-12-03T10:00:00+00:00; fell back to the "
                            "level's responders")
    alone = oncall.decide(1, {"responders": [], "oncall_calendar": "/cal.ics"}, shifts, thursday)
    assert (alone.names, alone.source) == ([], "nobody")
    assert alone.reason is not None
    assert alone.reason.endswith("no responders to fall back to")


def test_the_calendar_wins_over_the_responders_while_someone_is_on_call(
        shifts: Calendar) -> None:
    level = {"responders": ["lead"], "oncall_calendar": "/cal.ics"}
    found = oncall.decide(2, level, shifts, at("2026-11-30T10:00"))
    assert found == oncall.Found(2, ["Carol Day"], "calendar", "/cal.ics")
    assert found.detail() == {"level": 2, "names": ["Carol Day"], "source": "calendar",
                              "calendar": "/cal.ics"}


def test_an_unreadable_calendar_falls_back_with_the_reason() -> None:
    level = {"responders": ["lead"], "oncall_calendar": "/cal.ics"}
    found = oncall.decide(1, level, "FileNotFoundError: no such file", at("2026-11-30T10:00"))
    assert found.names == ["lead"]
    assert found.reason == ("calendar not read: FileNotFoundError: no such file; fell back to "
                            "the level's responders")


def test_a_level_without_a_calendar_is_its_responders() -> None:
    found = oncall.decide(1, {"responders": ["a", "b"]}, None, at("2026-11-30T10:00"))
    assert found == oncall.Found(1, ["a", "b"], "responders")


def test_a_plan_skips_levels_with_nobody_and_records_them(shifts: Calendar) -> None:
    pinned = {"escalation_chain": [
        {"responders": [], "oncall_calendar": "/cal.ics"},
        {"responders": [], "oncall_calendar": "/cal.ics"},
        {"responders": ["manager"]},
    ]}
    thursday = at("2026-12-03T10:00")
    plan = oncall.plan(pinned, 1, thursday, lambda source: shifts)
    assert plan.level == 3
    assert plan.found.names == ["manager"]
    assert [f.level for f in plan.skipped] == [1, 2]
    assert plan.pinned() == {"1": [], "2": [], "3": ["manager"]}
    assert plan.detail()["skipped"][0]["source"] == "nobody"
    at_work = oncall.plan(pinned, 1, at("2026-11-30T10:00"), lambda source: shifts)
    assert (at_work.level, at_work.skipped, at_work.pinned()) == (1, [], {"1": ["Carol Day"]})


def test_a_plan_with_nobody_anywhere_ends_at_the_last_level_with_nobody() -> None:
    pinned = {"escalation_chain": [{"responders": [], "oncall_calendar": "/a.ics"},
                                   {"responders": [], "oncall_calendar": "/b.ics"}]}
    plan = oncall.plan(pinned, 1, at("2026-11-30T10:00"), lambda source: "unreadable")
    assert (plan.level, plan.found.names, plan.found.source) == (2, [], "nobody")
    assert plan.pinned() == {"1": [], "2": []}


def test_a_plan_over_levels_without_calendars_adds_nothing_to_the_trace() -> None:
    plan = oncall.plan({"escalation_chain": [{"responders": ["a"]}]}, 1,
                       at("2026-11-30T10:00"), lambda source: "never asked")
    assert (plan.level, plan.uses_calendar, plan.detail()) == (1, False, {})


def test_a_feed_url_is_shown_without_its_secret_path() -> None:
    assert oncall.shown_source("https://oncall.example/private/t0k3n/feed.ics?x=1") == \
        "https://oncall.example/..."
    assert oncall.shown_source("/etc/oncall.ics") == "/etc/oncall.ics"


# --------------------------------------------------------------------------- the reader


def test_a_file_is_read_and_read_again_as_soon_as_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "oncall.ics"
    path.write_text(SHIFTS)
    first = oncall.read_calendar(str(path), allow_private=False)
    assert oncall.on_call_at(first, at("2026-11-30T10:00")) == ["Carol Day"]
    assert oncall.read_calendar(str(path), allow_private=False) is first  # cached
    path.write_text(SHIFTS.replace("CN=Carol Day", "CN=Carl Day") + "\n")
    again = oncall.read_calendar(str(path), allow_private=False)
    assert oncall.on_call_at(again, at("2026-11-30T10:00")) == ["Carl Day"]


def test_a_missing_or_broken_file_is_a_reason_not_an_exception(tmp_path: Path) -> None:
    read = oncall.reader(allow_private=False)
    missing = read(str(tmp_path / "nope.ics"))
    assert isinstance(missing, str)
    assert "FileNotFoundError" in missing
    broken = tmp_path / "broken.ics"
    broken.write_text("this is not a calendar")
    assert isinstance(read(str(broken)), str)


class _Feed(http.server.BaseHTTPRequestHandler):
    served: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.served.append(self.path)
        if not self.path.startswith("/private/"):
            self.send_error(404)
            return
        body = SHIFTS.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def feed() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Feed.served.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_feed_on_a_loopback_address_is_refused_like_a_webhook(feed: str) -> None:
    with pytest.raises(RefusedTarget, match="non-public address"):
        oncall.read_calendar(f"{feed}/private/t0k3n/a.ics", allow_private=False)
    assert _Feed.served == []  # refused before connecting


def test_a_feed_is_read_when_private_addresses_are_allowed_and_cached(feed: str) -> None:
    url = f"{feed}/private/t0k3n/b.ics"
    clock = [1000.0]
    calendar = oncall.read_calendar(url, allow_private=True, clock=lambda: clock[0])
    assert oncall.on_call_at(calendar, at("2026-12-02T10:00")) == ["erin"]
    clock[0] += oncall.CACHE_SECONDS - 1
    oncall.read_calendar(url, allow_private=True, clock=lambda: clock[0])
    assert len(_Feed.served) == 1
    clock[0] += 2
    oncall.read_calendar(url, allow_private=True, clock=lambda: clock[0])
    assert len(_Feed.served) == 2


def test_the_private_webhooks_setting_allows_a_loopback_feed(
        feed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from axtrace.settings import get_settings
    from axtrace.workflow import calendars

    monkeypatch.setenv("AXTRACE_ALLOW_PRIVATE_WEBHOOKS", "true")
    get_settings.cache_clear()
    try:
        found = calendars()(f"{feed}/private/t0k3n/c.ics")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert isinstance(found, Calendar)


def test_a_feed_error_names_the_status_not_the_secret_url(feed: str) -> None:
    found = oncall.reader(allow_private=True)(f"{feed}/t0k3n-in-path/d.ics")
    assert found == "HTTPStatusError (HTTP 404)"
