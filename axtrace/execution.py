"""How run executions start: forked from a warm template process, or spawned as Prefect does.

Prefect's Runner (``axtrace serve``) and its process worker start every execution of a flow
run, the first and again after each resume, as ``python -m prefect.engine`` in a fresh
interpreter, which imports Prefect, SQLAlchemy and the flow again: about 2 CPU-s before the
flow's first line. AxTrace starts that same command's work in a child forked from a *template*:
a ``multiprocessing`` forkserver that has imported Prefect and the libraries the flow uses and
started nothing (no thread, no event loop, no client, no connection). That is what makes the
fork safe: Prefect moved to spawn because its engine deadlocked in forks of a *threaded*
process (PrefectHQ/prefect#16802); the forkserver is a separate, single-threaded interpreter
that only ever forks.

The child then does what ``python -m prefect.engine`` does: it takes the environment and
working directory the spawned process would have had, reads Prefect's settings from them and
runs ``prefect.engine`` as ``__main__``. AxTrace's own modules and the flow file are *not* in
the template: each execution imports them from disk (about 0.1 CPU-s), so an edited workflow
takes effect at the next execution, as with spawn, and no restart of the template is needed.
Only a new install of Prefect or the libraries needs a restart of ``axtrace serve`` / the
worker, which a spawning server needs too.

Everything else stays Prefect's: the Runner or worker builds the command's environment,
registers the control channel for cancellation, watches the process and marks it Crashed when
it dies. Only the module-level ``run_process`` of Prefect's engine-command starter is replaced
(its docstring names it as the place to patch), and only for the engine command.

``AXTRACE_EXECUTION=spawn``, or a platform without ``fork``, keeps Prefect's spawn.
"""

from __future__ import annotations

import atexit
import json
import logging
import multiprocessing
import os
import runpy
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger("axtrace.execution")

ENGINE_MODULE = "prefect.engine"
PRELOAD = (
    "prefect",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.flows",
    "prefect.tasks",
    "prefect.client.orchestration",
    "prefect.input",
    "prefect.flow_runs",
    "prefect.artifacts",
    "prefect.blocks.core",
    "prefect.blocks.notifications",
    "prefect.cache_policies",
    "prefect.events",
    "prefect.logging.handlers",
    "prefect._internal.metrics",
    "prefect.workers.process",
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlmodel",
    "pydantic",
    "pydantic_settings",
    "alembic",
    "jinja2.sandbox",
)
"""What the template imports: Prefect and the libraries, never AxTrace's own code."""

_spawn_run_process: Callable[..., Any] | None = None
_interpreter_path: list[str] = []
"""The interpreter's own ``sys.path`` (no script folder, no ``PYTHONPATH``), read at install."""


def warm_supported() -> bool:
    """True where a forkserver can be used (POSIX with fork)."""
    return "forkserver" in multiprocessing.get_all_start_methods()


def wanted() -> bool:
    """Warm executions unless ``AXTRACE_EXECUTION=spawn`` or the platform has no fork."""
    from axtrace.settings import get_settings

    return get_settings().execution == "warm" and warm_supported()


def template() -> Any:
    """The forkserver context whose server is the template (one per process; typed Any:
    the forkserver context class exists only on platforms with fork)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def install() -> bool:
    """Start executions of Prefect's engine command in this process from the warm template.

    Starts the template and waits until it has made its imports (a second or two), so that
    the first alert does not wait for them. Returns False, changing nothing, where warm
    executions are off.
    """
    global _spawn_run_process
    if not wanted():
        logger.info("run executions start as fresh processes (Prefect's spawn)")
        return False
    from prefect.runner import _starter_engine

    _interpreter_path[:] = interpreter_path()
    if getattr(_starter_engine, "run_process") is not run_process:  # noqa: B009 (not exported)
        _spawn_run_process = getattr(_starter_engine, "run_process")  # noqa: B009
        setattr(_starter_engine, "run_process", run_process)  # noqa: B010
    warm_up = template().Process(target=time.sleep, args=(0,), name="axtrace-warm-up")
    warm_up.start()  # returns once the template has finished its imports and forked once
    warm_up.join()
    logger.info("run executions start warm: forked from a template that has Prefect imported")
    return True


def interpreter_path() -> list[str]:
    """``sys.path`` of a fresh interpreter without its first entry and ``PYTHONPATH``."""
    shown = subprocess.run(
        [sys.executable, "-E", "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
        capture_output=True, text=True, check=True, cwd=os.path.expanduser("~"), timeout=60,
    )
    found: list[str] = json.loads(shown.stdout)
    return found


def is_engine_command(command: list[str]) -> bool:
    return len(command) == 3 and command[1:] == ["-m", ENGINE_MODULE]


async def run_process(
    command: list[str], *, stream_output: Any = False, task_status: Any = None,
    task_status_handler: Callable[[Any], Any] | None = None, **kwargs: Any,
) -> Any:
    """Prefect's ``run_process`` for the engine starter: the engine command runs in a warm
    fork; any other command goes to Prefect's own function."""
    env: Mapping[str, str | None] = kwargs.pop("env", None) or os.environ
    cwd = kwargs.pop("cwd", None)
    new_session = bool(kwargs.pop("start_new_session", False))
    if not is_engine_command(command) or kwargs or _spawn_run_process is None:
        assert _spawn_run_process is not None
        return await _spawn_run_process(
            command, stream_output=stream_output, task_status=task_status,
            task_status_handler=task_status_handler, env=env, cwd=cwd,
            **({"start_new_session": True} if new_session else {}), **kwargs,
        )
    import anyio

    process = template().Process(
        target=execute, name="axtrace-execution",
        args=(dict(env), str(cwd) if cwd else os.getcwd(), new_session, bool(stream_output),
              list(_interpreter_path)),
    )
    await anyio.to_thread.run_sync(process.start)
    try:
        if task_status is not None:
            task_status.started(task_status_handler(process) if task_status_handler
                                else process.pid)
        await anyio.to_thread.run_sync(process.join, abandon_on_cancel=True)
    finally:
        if process.exitcode is None:  # cancelled while running: as Prefect's open_process
            process.terminate()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(process.join, 10)
    return process


def execute(env: dict[str, str | None], cwd: str, new_session: bool, output: bool,
            interpreter: list[str]) -> None:
    """One execution, in a fresh fork of the template: ``python -m prefect.engine``, with the
    environment, working directory and ``sys.path`` the spawned process would have had."""
    if new_session:
        os.setsid()
    if not output:
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
    logging_as_template = _logging_settings(os.environ) == _logging_settings(env)
    os.environ.clear()
    os.environ.update({k: v for k, v in env.items() if v is not None})
    os.chdir(cwd)
    # as `python -m` builds it: the working folder, PYTHONPATH, the interpreter's own entries
    extra = [p for p in (env.get("PYTHONPATH") or "").split(os.pathsep) if p]
    sys.path[:] = [os.getcwd(), *extra, *(interpreter or sys.path[1:])]
    _share_tls_contexts()
    from prefect.context import SettingsContext, get_settings_context
    from prefect.logging.configuration import setup_logging
    from prefect.settings import Settings

    sys.modules.pop(ENGINE_MODULE, None)  # run it as __main__, as `python -m` does
    sys.argv = [ENGINE_MODULE]
    try:
        # Prefect read its settings when the template imported it: read them again from this
        # run's environment, as Prefect's own subprocess runner does.
        with SettingsContext(profile=get_settings_context().profile, settings=Settings()):
            if not logging_as_template:
                setup_logging()
            runpy.run_module(ENGINE_MODULE, run_name="__main__", alter_sys=True)
    finally:
        # A forkserver child ends with os._exit: run the exit hooks an interpreter would
        # (Prefect drains its log and event workers in them).
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()


def _logging_settings(env: Mapping[str, str | None]) -> dict[str, str | None]:
    return {k: v for k, v in env.items() if k.startswith("PREFECT_LOGGING_")}


def _share_tls_contexts() -> None:
    """Let every Prefect API client of this execution share one TLS context per CA file.

    Prefect builds a new context from its CA file (certifi's: about 150 certificates parsed)
    for every API client it creates, about 25 per execution and ``http://`` URLs included;
    that was 40 % of a warm execution's CPU. Contexts made without a CA file, or with other
    arguments, are made as before (Prefect changes those after making them).
    """
    import ssl

    plain = ssl.create_default_context
    made: dict[str, ssl.SSLContext] = {}

    def shared(purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH, *, cafile: str | None = None,
               capath: str | None = None, cadata: Any = None) -> ssl.SSLContext:
        if cafile is None or capath is not None or cadata is not None \
                or purpose is not ssl.Purpose.SERVER_AUTH:
            return plain(purpose, cafile=cafile, capath=capath, cadata=cadata)
        if cafile not in made:
            made[cafile] = plain(purpose, cafile=cafile)
        return made[cafile]

    ssl.create_default_context = shared  # type: ignore[assignment]  # in this child only
