"""Settings from the environment: a misspelled ``AXTRACE_*`` name or a bad value is an error
naming the variable, never silently ignored."""

from __future__ import annotations

import subprocess
import sys

import pytest

from axtrace.settings import BadSetting, read_settings, unknown_variables


def test_a_misspelled_variable_is_refused_with_the_setting_it_resembles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AXTRACE_DISPATCH_SECOND", "1")
    with pytest.raises(BadSetting) as caught:
        read_settings({"AXTRACE_DISPATCH_SECOND": "1"})
    assert caught.value.field == "AXTRACE_DISPATCH_SECOND"
    assert caught.value.message == ("AXTRACE_DISPATCH_SECOND is not an AxTrace setting; "
                                    "did you mean AXTRACE_DISPATCH_SECONDS?")


def test_names_are_matched_in_any_case_as_settings_reads_them() -> None:
    assert unknown_variables({"axtrace_home": "/x", "AXTRACE_Dispatch_Seconds": "1"}) == []
    assert unknown_variables({"axtrace_hom": "/x"}) == ["axtrace_hom"]


def test_the_test_suites_own_variables_and_other_prefixes_are_not_settings() -> None:
    assert unknown_variables({"AXTRACE_REQUIRE_SERVICES": "1", "AXTRACE_TEST_PROBE": "x",
                              "PREFECT_HOME": "/p", "AXTRACEFOO": "1"}) == []


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AXTRACE_DISPATCH_SECONDS", "soon")
    with pytest.raises(BadSetting) as caught:
        read_settings({"AXTRACE_DISPATCH_SECONDS": "soon"})
    assert caught.value.field == "AXTRACE_DISPATCH_SECONDS"
    assert caught.value.message.startswith("AXTRACE_DISPATCH_SECONDS: Input should be a valid")


def test_the_cli_says_so_and_exits_2_before_doing_anything() -> None:
    done = subprocess.run([sys.executable, "-m", "axtrace", "report"], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={"PATH": "/usr/bin:/bin", "AXTRACE_DISPATCH_SECOND": "1"})
    assert done.returncode == 2
    assert "AXTRACE_DISPATCH_SECOND is not an AxTrace setting" in done.stderr
    assert "Traceback" not in done.stderr
