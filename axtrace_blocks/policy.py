"""The ownership policy of one site: who must act on an alert, and by when.

Pure data with validation; the decisions made from it (who may act at which level, which
deadline applies) live in :mod:`axtrace.ownership` and work on a plain snapshot of it.
"""

from __future__ import annotations

import re
from difflib import get_close_matches
from typing import Any
from urllib.parse import urlsplit

from prefect.blocks.core import Block
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from axtrace.vocabulary import SEVERITIES, SITE_SLUG
from axtrace_blocks.durations import Duration
from axtrace_blocks.maintenance import MaintenanceWindow


def calendar_source(source: str) -> str:
    """An on-call calendar as written: an ``https://`` URL with a host, or a file path (no
    other scheme: ``http://`` would let anyone on the way change who is on call)."""
    cleaned = source.strip()
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", cleaned)
    if not cleaned:
        raise ValueError("oncall_calendar must not be empty")
    if scheme and (scheme.group(1).lower() != "https" or not urlsplit(cleaned).hostname):
        raise ValueError(f"oncall_calendar must be an https:// URL with a host or a file "
                         f"path, not a {scheme.group(1)}:// URL")
    return cleaned


def name_pattern(pattern: str) -> str:
    """A regular expression with exactly one group (the name)."""
    try:
        groups = re.compile(pattern).groups
    except re.error as exc:
        raise ValueError(f"oncall_name_pattern is not a valid regular expression: {exc}") \
            from None
    if groups != 1:
        raise ValueError(f"oncall_name_pattern needs exactly one group (the name), "
                         f"it has {groups}")
    return pattern


class EscalationLevel(BaseModel):
    """One level of an escalation chain: who is called, how long they have to acknowledge, and
    how often they are reminded of an alert they acknowledged and have not resolved."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        default="",
        description="A label for the level shown to operators, such as 'Line lead'.",
    )
    responders: list[str] = Field(
        default_factory=list,
        description=(
            "People or teams who may acknowledge and resolve at this level; with an on-call "
            "calendar, the fallback when it cannot be read or has nobody on call."
        ),
    )
    oncall_calendar: str | None = Field(
        default=None,
        description=(
            "An iCalendar feed of this level's on-call shifts: a file path or an https:// URL; "
            "whoever is on call when the alert reaches the level may act at it."
        ),
    )
    oncall_name_pattern: str | None = Field(
        default=None,
        description=(
            "A regular expression with one group that takes the name out of an event's "
            "summary, e.g. 'On call: (.+)'; empty uses the whole summary."
        ),
    )
    acknowledge_within: Duration = Field(
        description="Time allowed to acknowledge before escalating, e.g. '15m' or 'PT15M'.",
    )
    remind_every: Duration | None = Field(
        default=None,
        description=(
            "While an alert acknowledged at this level stays unresolved, notify the level again "
            "this often, e.g. '30m'; empty never reminds."
        ),
    )

    @field_validator("responders")
    @classmethod
    def _unique_responders(cls, responders: list[str]) -> list[str]:
        cleaned = [r.strip() for r in responders]
        if any(not r for r in cleaned):
            raise ValueError("responders must not contain an empty name")
        seen: set[str] = set()
        for name in cleaned:
            if name in seen:
                raise ValueError(f"responder '{name}' is listed twice in this level")
            seen.add(name)
        return cleaned

    @field_validator("oncall_calendar")
    @classmethod
    def _calendar_source(cls, source: str | None) -> str | None:
        return None if source is None else calendar_source(source)

    @field_validator("oncall_name_pattern")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        return None if pattern is None else name_pattern(pattern)

    @model_validator(mode="after")
    def _someone_to_call(self) -> EscalationLevel:
        if not self.responders and self.oncall_calendar is None:
            raise ValueError("a level needs responders, an oncall_calendar, or both")
        if self.oncall_name_pattern is not None and self.oncall_calendar is None:
            raise ValueError("oncall_name_pattern needs an oncall_calendar")
        return self


class DeadlineOverride(BaseModel):
    """Deadlines that replace the defaults for alerts of one severity."""

    model_config = ConfigDict(extra="forbid")

    acknowledge_within: Duration | None = Field(
        default=None,
        description=(
            "Acknowledge deadline at every level for this severity; empty keeps each level's own."
        ),
    )
    resolve_within: Duration | None = Field(
        default=None,
        description="Resolve deadline for this severity; empty keeps the policy's default.",
    )


class Detector(BaseModel):
    """A detector the site must hear from (a dead-man switch): silence longer than
    ``heartbeat_within`` raises one alert, and its next heartbeat resolves it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=200,
        description="The detector's name, as its heartbeats and Watchdog label give it.",
    )
    heartbeat_within: Duration = Field(
        description="Longest silence allowed between two heartbeats, e.g. '10m' or 'PT10M'.",
    )

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name.strip() or name != name.strip():
            raise ValueError(f"name must not be empty or start or end with a space, got {name!r}")
        return name


class OwnershipPolicy(Block):
    """Who owns AI alerts at one site: the owning team, an escalation chain of responders with
    acknowledge deadlines (and optional reminders), and the resolve deadline. AxTrace pins the
    policy on each alert when its run starts, so editing it never changes the chain of an alert
    already open.

    Example:
        Load the policy of a site:
        ```python
        from axtrace_blocks import OwnershipPolicy

        policy = OwnershipPolicy.load("BLOCK_NAME")
        print(policy.escalation_chain[0].responders)
        ```
    """

    _block_type_name = "AxTrace Ownership Policy"
    _block_type_slug = "axtrace-ownership-policy"
    _description = "Who owns AI alerts at one site: owning team, escalation chain and deadlines."
    _documentation_url = "https://github.com/axtrace/axtrace#sites"  # type: ignore[assignment]

    # Prefect's Block allows unknown fields; a policy must not: a misspelled field would be
    # dropped and its rule silently not apply. Block documents hold only the schema's fields
    # (Prefect strips ``block_type_slug`` and its private keys before validating), so stored
    # policies still load.
    model_config = ConfigDict(extra="forbid")

    site: str = Field(
        description="The site slug this policy belongs to, such as 'berlin-plant'.",
        # The pattern goes to the JSON schema so the Prefect UI form checks it as you type;
        # ``_slug_site`` checks it in Python with a message an operator can act on.
        json_schema_extra={"pattern": SITE_SLUG},
    )
    owning_team: str = Field(min_length=1, description="The team that owns alerts at this site.")
    escalation_chain: list[EscalationLevel] = Field(
        description=(
            "Levels called in order when an acknowledge or resolve deadline passes; the first "
            "is the owner."
        ),
    )
    resolve_within: Duration = Field(
        description=(
            "Time allowed from receiving an alert to resolving it, e.g. '4h'; a level that takes "
            "over an acknowledged alert when it passes gets this long again."
        ),
    )
    severity_overrides: dict[str, DeadlineOverride] = Field(
        default_factory=dict,
        description=(
            "Deadlines per severity (critical, high, medium, low) that replace the defaults."
        ),
        json_schema_extra={"propertyNames": {"enum": list(SEVERITIES)}},
    )
    notification_block: str | None = Field(
        default=None,
        description=(
            "A Prefect notification block used to notify responders, as "
            "'<block-type-slug>/<name>', e.g. 'slack-webhook/berlin-ops'; empty records only."
        ),
    )
    notification_template: str | None = Field(
        default=None,
        description=(
            "Jinja text of the notification, rendered in a sandbox with alert, level, "
            "responders, deadline and action (acknowledge or resolve); empty uses the standard "
            "text."
        ),
    )
    allow_mass_mentions: bool = Field(
        default=False,
        description=(
            "Let the notification template's own text mention everyone (@channel, @here, "
            "@everyone, <!here> ...); mentions inside alert fields are always neutralised."
        ),
    )
    maintenance: list[MaintenanceWindow] = Field(
        default_factory=list,
        description=(
            "Maintenance windows: an alert received in one is recorded and assigned, but no "
            "one is paged until the window ends."
        ),
    )

    detectors: list[Detector] = Field(
        default_factory=list,
        description=(
            "Detectors this site must hear from, each with the longest silence allowed; a "
            "silent one raises an alert (source 'heartbeat'). Empty watches none."
        ),
    )

    @field_validator("detectors")
    @classmethod
    def _unique_detectors(cls, detectors: list[Detector]) -> list[Detector]:
        seen: set[str] = set()
        for detector in detectors:
            if detector.name in seen:
                raise ValueError(f"detector '{detector.name}' is listed twice")
            seen.add(detector.name)
        return detectors

    @model_validator(mode="before")
    @classmethod
    def _drop_own_block_type_slug(cls, values: Any) -> Any:
        """Prefect adds ``block_type_slug`` to every dump: metadata, not a field. Another
        type's slug is left in place, so Prefect's own check refuses it."""
        if isinstance(values, dict) and values.get("block_type_slug") == cls.get_block_type_slug():
            return {key: value for key, value in values.items() if key != "block_type_slug"}
        return values

    @field_validator("notification_template")
    @classmethod
    def _valid_template(cls, template: str | None) -> str | None:
        if template is None:
            return None
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        try:
            ImmutableSandboxedEnvironment().parse(template)
        except TemplateError as exc:
            raise ValueError(f"notification_template is not a valid template: {exc}") from exc
        return template

    @field_validator("site")
    @classmethod
    def _slug_site(cls, site: str) -> str:
        if not re.fullmatch(SITE_SLUG, site):
            raise ValueError(
                f"site must be a slug of lowercase letters, digits and hyphens starting with "
                f"a letter or digit, at most 63 characters, such as 'berlin-plant'; got {site!r}"
            )
        return site

    @field_validator("escalation_chain")
    @classmethod
    def _non_empty_chain(cls, chain: list[EscalationLevel]) -> list[EscalationLevel]:
        if not chain:
            raise ValueError("escalation_chain needs at least one level")
        return chain

    @field_validator("severity_overrides")
    @classmethod
    def _known_severities(
        cls, overrides: dict[str, DeadlineOverride]
    ) -> dict[str, DeadlineOverride]:
        for severity in overrides:
            if severity not in SEVERITIES:
                close = get_close_matches(severity, SEVERITIES, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise PydanticCustomError(
                    "unknown_severity",
                    "unknown severity '{severity}' in severity_overrides; {hint}"
                    "expected one of {expected}",
                    {"severity": severity, "hint": hint, "expected": ", ".join(SEVERITIES)},
                )
        return overrides
