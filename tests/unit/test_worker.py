"""Specification of the ``axtrace-process`` work pool type: Prefect finds it through the
``prefect.collections`` entry point, it is Prefect's process worker with its own job template,
and its runs take the engine-command path that warm executions replace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint, entry_points
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.plugins import load_prefect_collections
from prefect.workers.base import BaseWorker
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

from axtrace import worker
from axtrace.settings import get_settings
from axtrace.worker import WORKER_TYPE, WarmProcessJobConfiguration, WarmProcessWorker

_PROBE = """
import json, sys
from prefect.workers.base import BaseWorker

found = BaseWorker.get_worker_class_from_type({type!r})
print(json.dumps({{"class": found and f"{{found.__module__}}.{{found.__qualname__}}",
                   "types": BaseWorker.get_all_available_worker_types(),
                   "heavy": sorted(m for m in ("fastapi", "uvicorn", "sqlmodel", "typer",
                                               "axtrace.execution") if m in sys.modules)}}))
"""


def worker_entry_point() -> EntryPoint:
    matching = [ep for ep in entry_points(group="prefect.collections")
                if ep.name == "axtrace_worker"]
    assert len(matching) == 1, (
        "the installed distribution declares no prefect.collections entry point "
        "'axtrace_worker'; reinstall the project (pip install -e .)")
    return matching[0]


def test_the_entry_point_loads_the_worker_module() -> None:
    entry_point = worker_entry_point()

    assert entry_point.value == "axtrace.worker"
    assert entry_point.dist is not None
    assert entry_point.dist.name == "axtrace"
    assert entry_point.load() is worker


def test_prefects_collection_loader_loads_the_worker_module_without_error() -> None:
    assert load_prefect_collections()["axtrace_worker"] is worker


def test_prefect_finds_the_worker_class_by_its_pool_type() -> None:
    assert BaseWorker.get_worker_class_from_type(WORKER_TYPE) is WarmProcessWorker
    assert WORKER_TYPE in BaseWorker.get_all_available_worker_types()


def test_a_fresh_prefect_process_finds_the_type_through_the_entry_point_alone() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(type=WORKER_TYPE)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])

    assert found["class"] == "axtrace.worker.WarmProcessWorker"
    assert {"process", WORKER_TYPE} <= set(found["types"])
    assert found["heavy"] == [], "loading the collection must not load the server, CLI or "\
        "the execution template"


def test_the_worker_is_prefects_process_worker_with_the_same_job_variables() -> None:
    ours = WarmProcessWorker.get_default_base_job_template()
    prefects = ProcessWorker.get_default_base_job_template()

    assert issubclass(WarmProcessWorker, ProcessWorker)
    assert ours == prefects


@pytest.mark.parametrize("command", [None, "python -m prefect.engine"])
def test_a_run_without_a_custom_command_takes_the_engine_command_path(
    command: str | None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AXTRACE_EXECUTION", "warm")
    get_settings.cache_clear()
    configuration = WarmProcessJobConfiguration(command=command)
    try:
        configuration.prepare_for_flow_run(FlowRun(id=uuid4(), flow_id=uuid4(), name="r"))
    finally:
        get_settings.cache_clear()

    assert configuration._command_configured
    assert configuration.command is not None
    assert configuration.command.split()[1:] == ["-m", "prefect.engine"]


def test_with_axtrace_execution_spawn_a_run_takes_the_process_workers_own_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AXTRACE_EXECUTION", "spawn")
    get_settings.cache_clear()
    ours, prefects = WarmProcessJobConfiguration(), ProcessJobConfiguration()
    try:
        for configuration in (ours, prefects):
            configuration.prepare_for_flow_run(FlowRun(id=uuid4(), flow_id=uuid4(), name="r"))
    finally:
        get_settings.cache_clear()

    assert not ours._command_configured
    assert ours.command == prefects.command
