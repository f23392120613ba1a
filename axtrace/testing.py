"""Public test helpers: a real AxTrace on loopback (Prefect server, serving process, API).

Used by AxTrace's own tests and usable by teams who want to test their sites' policies::

    with Stack.start(tmp_path, sites=Path("deployments/sites.yaml")) as stack:
        alert_id = stack.raise_alert("berlin-plant", "Crack on line 3")
        stack.wait_for(alert_id, lambda a: a["status"] == "open" and a["level"] == 1)

:func:`make_policy` is the sample policy the tests share (and :func:`pinned_policy` the same
as an alert carries it), so a test writes only what it changes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from axtrace.runtime import start_child, start_prefect_server, stop, wait_healthy

_SAMPLE_POLICY: dict[str, Any] = {
    "site": "berlin-plant",
    "owning_team": "Berlin line quality",
    "escalation_chain": [
        {"name": "Line lead", "responders": ["anna", "ben"], "acknowledge_within": "10m"},
        {"name": "Shift manager", "responders": ["clara", "anna"], "acknowledge_within": "20m"},
        {"responders": ["dora"], "acknowledge_within": "1h"},
    ],
    "resolve_within": "4h",
    "severity_overrides": {"critical": {"acknowledge_within": "2m", "resolve_within": "1h"}},
}


def make_policy(*, levels: Mapping[int, Mapping[str, Any]] | None = None,
                **overrides: Any) -> dict[str, Any]:
    """The sample policy of berlin-plant (three levels, 10m / 20m / 1h, resolve within 4h,
    critical alerts faster) as plain data, a fresh copy each call: ``overrides`` replace its
    fields, ``levels`` merges fields into escalation levels by number (1 is the first)."""
    policy = {**deepcopy(_SAMPLE_POLICY), **overrides}
    chain: list[dict[str, Any]] = policy["escalation_chain"]
    for number, fields in (levels or {}).items():
        chain[number - 1] = {**chain[number - 1], **fields}
    return policy


def pinned_policy(*, levels: Mapping[int, Mapping[str, Any]] | None = None,
                  **overrides: Any) -> dict[str, Any]:
    """:func:`make_policy` checked by the policy block and pinned as an alert carries it."""
    from axtrace import ownership
    from axtrace_blocks import OwnershipPolicy

    policy = OwnershipPolicy.model_validate(make_policy(levels=levels, **overrides))
    return ownership.snapshot(policy)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    probe: Callable[[], Any], *, timeout: float = 60, interval: float = 0.3, what: str = "it",
) -> Any:
    """Call ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s (last: {last!r})")


def clean_environment() -> dict[str, str]:
    """``os.environ`` without ``PREFECT_*`` and ``AXTRACE_*``: the base of a test stack's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AXTRACE_"))}


@dataclass
class Stack:
    """Processes of one AxTrace under test, all on loopback, all real."""

    workdir: Path
    sites: Path
    env: dict[str, str]
    api_port: int
    server: subprocess.Popen[bytes] | None = None
    serve_proc: subprocess.Popen[bytes] | None = None
    intake_proc: subprocess.Popen[bytes] | None = None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        """``http`` sends the stack's intake token, if it has one (it may post and read)."""
        token = self.env.get("AXTRACE_INTAKE_TOKEN")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=120,
                                 headers=headers)

    @classmethod
    def environment(cls, workdir: Path, prefect_port: int, api_port: int) -> dict[str, str]:
        """What every process of the stack runs with: this process's environment without its
        Prefect and AxTrace settings (a developer's own must not leak in), then the stack's."""
        return {
            **clean_environment(),
            "PREFECT_HOME": str(workdir / "prefect"),
            "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "AXTRACE_HOME": str(workdir),
            "AXTRACE_DATABASE_URL": f"sqlite:///{workdir / 'axtrace.db'}",
            "AXTRACE_API_PORT": str(api_port),
            "AXTRACE_SWEEP_SECONDS": "0.5",
            "AXTRACE_RUNNER_POLL_SECONDS": "1",
        }

    @classmethod
    @contextmanager
    def start(cls, workdir: Path, *, sites: Path, prefect_port: int | None = None,
              api_port: int | None = None, serve: bool = True,
              extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
        """Start it all (``serve=False``: runs are created but nothing executes them)."""
        prefect_port = prefect_port or free_port()
        api_port = api_port or free_port()
        env = {**cls.environment(workdir, prefect_port, api_port), **(extra_env or {})}
        stack = cls(workdir, sites, env, api_port)
        try:
            stack.start_server()
            stack.apply_sites()
            if serve:
                stack.start_serve()
            stack.start_intake()
            yield stack
        finally:
            stack.close()

    def _log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def start_server(self) -> None:
        port = int(self.env["PREFECT_API_URL"].split(":")[2].split("/")[0])
        self.server = start_prefect_server(port, self._log("prefect-server"), self.env)
        wait_healthy(f"{self.env['PREFECT_API_URL']}/health", timeout=240, proc=self.server)

    def stop_server(self) -> None:
        stop(self.server)
        self.server = None

    def axtrace(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
        """Run an ``axtrace`` CLI command against this stack (``env``: instead of its own)."""
        return subprocess.run(
            [sys.executable, "-m", "axtrace", *args], env=env or self.env, capture_output=True,
            text=True, check=check, timeout=300,
        )

    def apply_sites(self) -> None:
        self.axtrace("db", "upgrade")
        self.axtrace("sites", "apply", str(self.sites))

    def start_serve(self) -> None:
        self.serve_proc = start_child(["serve", "--sites", str(self.sites)],
                                      self._log("serve"), self.env)

    def stop_serve(self, *, kill: bool = False) -> None:
        """Stop the serving process; ``kill``: SIGKILL it and every run process it started,
        as a machine failure would."""
        if self.serve_proc is not None and kill:
            os.killpg(self.serve_proc.pid, signal.SIGKILL)
            self.serve_proc.wait()
        stop(self.serve_proc)
        self.serve_proc = None

    def start_intake(self) -> None:
        self.intake_proc = start_child(["intake", "--port", str(self.api_port)],
                                       self._log("intake"), self.env)
        wait_healthy(f"http://127.0.0.1:{self.api_port}/healthz", timeout=60,
                     proc=self.intake_proc)

    def close(self) -> None:
        for proc in (self.serve_proc, self.intake_proc, self.server):
            stop(proc)
        self.http.close()

    # -- talking to it --------------------------------------------------------------

    def raise_alert(self, site: str, title: str, **fields: Any) -> int:
        response = self.http.post("/v1/alerts", json={"site": site, "title": title, **fields})
        response.raise_for_status()
        return int(response.json()["id"])

    def alert(self, alert_id: int) -> dict[str, Any]:
        response = self.http.get(f"/v1/alerts/{alert_id}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def wait_for(self, alert_id: int, test: Callable[[dict[str, Any]], bool], *,
                 timeout: float = 90, what: str = "the alert's state") -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            data = self.alert(alert_id)
            return data if test(data) else None

        result: dict[str, Any] = wait_until(probe, timeout=timeout, what=what)
        return result

    def steps(self, alert_id: int) -> list[str]:
        return [e["step"] for e in self.alert(alert_id)["trace"]]
