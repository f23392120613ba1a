"""The shipped automations are valid Prefect automations watching AxTrace's own events."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

FOLDER = Path(__file__).parents[2] / "deployments" / "automations"


@pytest.mark.parametrize(("name", "event", "posture"), [
    ("alert-ignored.yaml", "axtrace.alert.ignored", Posture.Reactive),
    ("auditor-stopped.yaml", "axtrace.auditor.heartbeat", Posture.Proactive),
])
def test_each_automation_file_parses_and_watches_the_right_event(
    name: str, event: str, posture: Posture,
) -> None:
    automation = AutomationCore.model_validate(yaml.safe_load((FOLDER / name).read_text()))
    assert isinstance(automation.trigger, EventTrigger)
    assert automation.trigger.expect == {event}
    assert automation.trigger.posture == posture
