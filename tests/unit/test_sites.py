"""The sites file: three example sites, and errors that name the site and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from axtrace.errors import InvalidInput
from axtrace.sites import DEFAULT_SITES, describe, load_sites, policy_version, project_root

ROOT = Path(__file__).parents[2]


def test_the_shipped_example_sites_differ_in_people_and_deadlines() -> None:
    specs = load_sites(ROOT / DEFAULT_SITES)
    assert [s.site for s in specs] == ["berlin-plant", "lyon-store", "austin-region"]
    people = [frozenset(p for lvl in s.policy.escalation_chain for p in lvl.responders)
              for s in specs]
    assert len(set(people)) == 3
    assert not (people[0] & people[1])
    assert len({policy_version(s) for s in specs}) == 3
    assert len({s.policy.escalation_chain[0].acknowledge_within for s in specs}) >= 2


def test_the_description_tells_an_operator_owner_chain_and_deadlines() -> None:
    text = describe(load_sites(ROOT / DEFAULT_SITES)[0])
    assert "Berlin line quality" in text
    assert "anna.keller" in text
    assert "20s" in text


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("sites: {}", "needs a 'sites:' mapping"),
    ("sites: [a, b]", "needs a 'sites:' mapping"),
    ("sites:\n  x:\n    description: no policy", "site 'x': needs a 'policy:' mapping"),
    ("sites:\n  x:\n    policy:\n      owning_team: t\n      escalation_chain: []\n"
     "      resolve_within: 1h", "site 'x': policy.escalation_chain"),
    ("sites:\n  x:\n    policy:\n      owning_team: t\n      escalation_chain:\n"
     "        - responders: [a, a]\n          acknowledge_within: 1m\n      resolve_within: 1h",
     "site 'x': policy.escalation_chain.0.responders"),
    ("sites:\n  Bad Site:\n    policy:\n      owning_team: t\n      escalation_chain:\n"
     "        - responders: [a]\n          acknowledge_within: 1m\n      resolve_within: 1h",
     "site 'Bad Site': site"),
    ("sites: [unclosed", "not valid YAML"),
])
def test_an_invalid_sites_file_fails_naming_the_site_and_field(
    tmp_path: Path, yaml_text: str, message: str,
) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(yaml_text)
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_sites(path)


def test_a_missing_sites_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="sites file not found"):
        load_sites(tmp_path / "nope.yaml")


def test_the_project_root_is_found_from_any_folder_below_it() -> None:
    assert project_root(ROOT / "deployments") == ROOT
