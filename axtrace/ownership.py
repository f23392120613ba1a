"""Pure decisions over a pinned ownership policy: who may act, which deadline applies.

A policy is pinned on an alert as ``OwnershipPolicy.model_dump(mode="json")`` when its run
starts; everything here works on that snapshot, so an edited block never changes an open alert.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from axtrace_blocks import OwnershipPolicy

_BLOCK_KEYS = ("block_type_slug",)


def snapshot(policy: OwnershipPolicy) -> dict[str, Any]:
    """The JSON form of ``policy`` that is pinned on an alert: its fields only (not Prefect's
    block keys, nor the ``_block_document_*`` a saved or loaded block carries)."""
    data = policy.model_dump(mode="json")
    data = {k: v for k, v in data.items() if k not in _BLOCK_KEYS and not k.startswith("_")}
    for level in data.get("escalation_chain", []):
        for optional in ("remind_every", "oncall_calendar", "oncall_name_pattern"):
            if level.get(optional) is None:  # a policy without them keeps its version
                level.pop(optional, None)
    if not data.get("detectors"):  # nor does a policy that watches no detector
        data.pop("detectors", None)
    if not data.get("maintenance"):  # nor does a policy without maintenance windows
        data.pop("maintenance", None)
    return data


def version(pinned: dict[str, Any]) -> str:
    """A short content hash: the same policy gives the same version at every site and time."""
    canonical = json.dumps(pinned, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def parse(pinned: dict[str, Any]) -> OwnershipPolicy:
    return OwnershipPolicy.model_validate(pinned)


def levels(pinned: dict[str, Any]) -> int:
    return len(pinned["escalation_chain"])


OnCallPinned = Mapping[str, list[str]] | None
"""Who was on call at each level when the alert reached it (``alert.on_call``: level as text
to names); a level not in it is called by its ``responders``."""


def level_people(pinned: dict[str, Any], level: int, on_call: OnCallPinned = None) -> list[str]:
    """Who may act at ``level`` itself: the names pinned when the alert reached it (on call,
    or the fallback to its responders, or nobody), else its responders."""
    if on_call is not None and str(level) in on_call:
        return list(on_call[str(level)])
    return list(pinned["escalation_chain"][level - 1].get("responders", []))


def responders(pinned: dict[str, Any], level: int, on_call: OnCallPinned = None) -> list[str]:
    """Everyone at ``level`` or an earlier one, in chain order, each once."""
    names: list[str] = []
    for i in range(1, min(level, levels(pinned)) + 1):
        names.extend(n for n in level_people(pinned, i, on_call) if n not in names)
    return names


def may_act(pinned: dict[str, Any], level: int, who: str | None,
            on_call: OnCallPinned = None) -> bool:
    return who is not None and who in responders(pinned, level, on_call)


def ack_window(pinned: dict[str, Any], level: int, severity: str) -> timedelta:
    policy = parse(pinned)
    override = policy.severity_overrides.get(severity)
    if override is not None and override.acknowledge_within is not None:
        return override.acknowledge_within
    return policy.escalation_chain[level - 1].acknowledge_within


def resolve_window(pinned: dict[str, Any], severity: str) -> timedelta:
    policy = parse(pinned)
    override = policy.severity_overrides.get(severity)
    if override is not None and override.resolve_within is not None:
        return override.resolve_within
    return policy.resolve_within


def remind_every(pinned: dict[str, Any], level: int) -> timedelta | None:
    """How often ``level`` is reminded of an alert acknowledged and not resolved (or never)."""
    return parse(pinned).escalation_chain[level - 1].remind_every


def level_name(pinned: dict[str, Any], level: int) -> str:
    name: str = pinned["escalation_chain"][level - 1].get("name") or ""
    return name or f"level {level}"
