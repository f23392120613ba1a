"""The dispatcher's Prefect client over real HTTP: a server that answers 503 (what a busy
SQLite Prefect server does) is tried again within about a second and a half, not a minute."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from axtrace.prefect_client import quick_client


class Busy(ThreadingHTTPServer):
    """Answers 503 to the first ``busy`` requests, then 200 with JSON ``true``."""

    def __init__(self, busy: int) -> None:
        self.busy, self.seen = busy, 0
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Busy

    def do_GET(self) -> None:
        self.server.seen += 1
        status = 503 if self.server.seen <= self.server.busy else 200
        body = b'{"exception_message": "Service Unavailable"}' if status == 503 else b"true"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet: the tests read the server's count of requests, not its log."""


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[Busy] = []

    def start(busy: int) -> Busy:
        server = Busy(busy)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def health(server: Busy) -> tuple[Any, float]:
    """Ask ``server`` (as the Prefect API) whether it is healthy; the answer and seconds."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://127.0.0.1:{server.server_address[1]}/api"

    async def ask() -> Any:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            async with quick_client() as client:
                return await client.api_healthcheck()

    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:  # a loop of its own: an earlier test may leave one
        answer = pool.submit(asyncio.run, ask()).result()
    return answer, time.monotonic() - started


def test_a_busy_server_is_tried_again_within_a_second(serve: Any) -> None:
    server = serve(busy=3)
    answer, seconds = health(server)
    assert answer is None, "healthy once the server took the request"
    assert server.seen == 4
    assert seconds < 1.5, "three quick retries (Prefect's own waits 2 + 4 + 8 s)"


def test_a_server_that_stays_busy_is_given_up_on_in_seconds_not_a_minute(serve: Any) -> None:
    server = serve(busy=1000)
    answer, seconds = health(server)
    assert isinstance(answer, httpx.HTTPStatusError)
    assert answer.response.status_code == 503
    assert server.seen == 6, "six tries, none of Prefect's own on top"
    assert seconds < 8.0, "about 1.6 s of quick retries and Prefect's 2 s pause (not 60 s)"
