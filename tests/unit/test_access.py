"""Who may read and act, and which browser requests are refused: the pure decisions."""

from __future__ import annotations

import pytest

from axtrace import access
from axtrace.access import Caller, Posture
from axtrace.errors import AxTraceError

OPEN = Posture(credentials=False, tokens_required=False)
INTAKE_ONLY = Posture(credentials=True, tokens_required=False)
TOKENS = Posture(credentials=False, tokens_required=True)
INTAKE = Caller("intake")
READ = Caller("read", "dash")
ALICE = Caller("respond", "alice")
BERLIN_LEAD = Caller("respond", "lena", frozenset({"berlin"}))
LOOPBACK = frozenset(access.LOOPBACK_HOSTS)


def refusal(call: object, *args: object) -> tuple[int, str | None]:
    with pytest.raises(AxTraceError) as refused:
        call(*args)  # type: ignore[operator]
    return refused.value.status_code, refused.value.field


def test_open_mode_lets_anyone_read_and_act() -> None:
    access.decide("read", OPEN, access.NOBODY)
    access.decide("act", OPEN, access.NOBODY)


@pytest.mark.parametrize("posture", [INTAKE_ONLY, TOKENS])
def test_once_anything_is_configured_reading_needs_a_credential(posture: Posture) -> None:
    assert refusal(access.decide, "read", posture, access.NOBODY) == (401, "authorization")
    for caller in (INTAKE, READ, ALICE):
        access.decide("read", posture, caller)


def test_a_token_not_accepted_is_401_even_in_open_mode() -> None:
    assert refusal(access.decide, "read", OPEN, Caller("invalid")) == (401, "authorization")


def test_with_tokens_required_only_a_responder_token_acts() -> None:
    access.decide("act", TOKENS, ALICE)
    assert refusal(access.decide, "act", TOKENS, access.NOBODY) == (401, "authorization")
    assert refusal(access.decide, "act", TOKENS, READ) == (403, "authorization")
    assert refusal(access.decide, "act", TOKENS, INTAKE) == (403, "authorization")


def test_with_only_the_intake_token_configured_acting_needs_it() -> None:
    access.decide("act", INTAKE_ONLY, INTAKE)
    assert refusal(access.decide, "act", INTAKE_ONLY, access.NOBODY) == (401, "authorization")


def test_the_token_names_who_acts_and_without_one_the_body_does() -> None:
    assert access.actor(ALICE, None) == "alice"
    assert access.actor(ALICE, "bob") == "alice"
    assert access.actor(INTAKE, "bob") == "bob"
    assert refusal(access.actor, access.NOBODY, None) == (422, "responder")


def test_an_alert_of_a_site_the_token_does_not_cover_is_not_found() -> None:
    access.visible(BERLIN_LEAD, "berlin", 7)
    access.visible(ALICE, "lyon", 7)
    assert refusal(access.visible, BERLIN_LEAD, "lyon", 7) == (404, "alert_id")


def test_a_report_covers_the_tokens_sites_only() -> None:
    assert access.report_sites(BERLIN_LEAD, ()) == ["berlin"]
    assert access.report_sites(BERLIN_LEAD, ["berlin"]) == ["berlin"]
    assert refusal(access.report_sites, BERLIN_LEAD, ["lyon"]) == (404, "site")
    assert access.report_sites(ALICE, ()) == []


def test_without_an_intake_credential_the_api_listens_on_loopback_only() -> None:
    access.serving(intake_credentials=False, host="127.0.0.1")
    access.serving(intake_credentials=True, host="0.0.0.0")  # noqa: S104
    with pytest.raises(AxTraceError) as refused:
        access.serving(intake_credentials=False, host="0.0.0.0")  # noqa: S104
    assert refused.value.field == "host"
    assert "AXTRACE_INTAKE_TOKEN" in refused.value.message


def test_allowed_hosts_default_to_loopback_and_the_hosts_configured() -> None:
    hosts = access.allowed_hosts(None, own=["0.0.0.0", "axtrace.example"])  # noqa: S104
    assert hosts == LOOPBACK | {"axtrace.example"}
    assert access.allowed_hosts("a.example, *", own=["x"]) == {"a.example", "*"}


@pytest.mark.parametrize("host", ["localhost:4280", "127.0.0.1", "[::1]:80", "LOCALHOST"])
def test_loopback_names_with_any_port_are_allowed(host: str) -> None:
    access.browser_safe("GET", {"host": host}, LOOPBACK)


@pytest.mark.parametrize(("headers", "expected"), [
    ({"host": "evil.example"}, (400, "host")),
    ({}, (400, "host")),
    ({"host": "127.0.0.1:4280", "origin": "https://evil.example"}, (403, "origin")),
    ({"host": "127.0.0.1:4280", "origin": "null"}, (403, "origin")),
    ({"host": "127.0.0.1", "sec-fetch-site": "cross-site"}, (403, "sec-fetch-site")),
])
def test_browser_requests_from_elsewhere_are_refused_naming_the_header(
    headers: dict[str, str], expected: tuple[int, str],
) -> None:
    assert refusal(access.browser_safe, "GET", headers, LOOPBACK) == expected


def test_an_origin_on_the_allowed_hosts_is_same_site() -> None:
    access.browser_safe("POST", {"host": "127.0.0.1:4280", "origin": "http://localhost:4280",
                                 "content-type": "application/json",
                                 "sec-fetch-site": "same-origin"}, LOOPBACK)


def test_behind_a_proxy_any_host_is_answered_but_origins_must_still_match() -> None:
    hosts = frozenset({"*"})
    access.browser_safe("GET", {"host": "axtrace.example",
                                "origin": "https://axtrace.example"}, hosts)
    assert refusal(access.browser_safe, "GET", {"host": "axtrace.example",
                                                "origin": "https://evil.example"}, hosts) == (
        403, "origin")


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "Application/JSON",
    "application/vnd.pagerduty+json"])
def test_json_bodies_are_accepted(content_type: str) -> None:
    access.browser_safe("POST", {"host": "localhost", "content-type": content_type}, LOOPBACK)


@pytest.mark.parametrize("content_type", [
    "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/jsonp"])
def test_a_post_that_is_not_json_is_415_naming_the_content_type(content_type: str) -> None:
    headers = {"host": "localhost", "content-type": content_type}
    assert refusal(access.browser_safe, "POST", headers, LOOPBACK) == (415, "content-type")


def test_tokens_are_created_with_scope_and_sites_and_listed_so(ledger: str) -> None:
    from typer.testing import CliRunner

    from axtrace.cli import app

    runner = CliRunner()
    made = runner.invoke(app, ["tokens", "create", "lena", "--site", "berlin", "--site",
                               "lyon", "--read-only"])
    assert made.exit_code == 0, made.output
    listed = " ".join(runner.invoke(app, ["tokens", "list"]).output.split())
    assert "lena" in listed
    assert "│ lena │ read │ berlin, lyon │" in listed


def test_a_token_for_a_site_that_is_not_a_slug_is_refused_naming_the_option(
    ledger: str,
) -> None:
    from typer.testing import CliRunner

    from axtrace.cli import app

    refused = CliRunner().invoke(app, ["tokens", "create", "lena", "--site", "Berlin Plant"])
    assert refused.exit_code == 1
    assert "--site: not a site slug: 'Berlin Plant'" in " ".join(refused.output.split())
