from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prefect.events.worker import EventsWorker
from prefect.testing.fixtures import (  # noqa: F401  (pytest finds fixtures by name)
    asserting_events_worker,
)

from axtrace.ledger.db import upgrade
from axtrace.settings import get_settings
from axtrace.testing import make_policy


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated SQLite ledger that this process's settings point at."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    monkeypatch.setenv("AXTRACE_DATABASE_URL", url)
    get_settings.cache_clear()
    upgrade(url)
    yield url
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def events(request: pytest.FixtureRequest) -> Iterator[EventsWorker]:
    """Prefect events emitted by the code under test, captured by Prefect's own test client."""
    worker: EventsWorker = request.getfixturevalue("asserting_events_worker")
    yield worker
    worker.drain()
    client = getattr(worker, "_client", None)
    if client is not None:
        client.events = []


POLICY = make_policy()
"""The sample policy (see :func:`axtrace.testing.make_policy`)."""


class Receiver(ThreadingHTTPServer):
    """A real HTTP server on loopback that keeps what it was sent and counts connections.
    It answers 503 to the first ``fail_first`` posts (to every post when negative), then 200."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[tuple[str, bytes]] = []
        self.connections = 0
        self.fail_first = fail_first
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        server: Any = self.server
        server.posts.append((self.path, self.rfile.read(length)))
        failing = server.fail_first < 0 or len(server.posts) <= server.fail_first
        self.send_response(503 if failing else 200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads what was received, not the server's log."""


@contextmanager
def receiving(fail_first: int = 0) -> Iterator[Receiver]:
    """A :class:`Receiver` serving in a thread of its own while inside."""
    server = Receiver(fail_first)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as server:
        yield server


class Mailbox:
    """What a real SMTP server on loopback (aiosmtpd) received, as parsed messages."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = message_from_bytes(envelope.content, policy=default)
        assert isinstance(found, EmailMessage)
        self.messages.append(found)
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on loopback while inside: its mailbox and port."""
    from aiosmtpd.controller import Controller

    from axtrace.testing import free_port

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield mailbox, int(controller.port)
    finally:
        controller.stop()
