"""A Prefect client for AxTrace's own loops (the dispatcher): quick on a busy server.

A Prefect server on SQLite answers 503 when a write meets another (``SQLITE_BUSY``: a request
that read, then writes, after another connection wrote; SQLite does not wait then). Under a
steady stream of runs that is a few run creations a minute, and the same call goes through a
moment later. Prefect's client waits 2, 4, 8, 16 and 32 s between its retries (about a minute
in all), which put one alert a minute behind and, before the dispatcher pipelined, every
alert behind it. Here a 503 is tried again after 50 ms, doubling, six tries in about 1.6 s;
Prefect's own retries are off (even then its client pauses 2 s before it hands back a 503),
and what still fails goes back to the outbox, which tries again on its own backoff.

The transport is made with the connection settings Prefect's client would use (TLS
verification or ``PREFECT_API_TLS_INSECURE_SKIP_VERIFY``, ``PREFECT_API_SSL_CERT_FILE``,
HTTP/2, its pool limits): passing a transport replaces httpx's default one.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

BUSY = 503


class RetryBusy(httpx.AsyncBaseTransport):
    """Sends a request again, a few times and soon, while the server answers 503."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, tries: int = 6,
                 first_pause: float = 0.05) -> None:
        self.inner, self.tries, self.first_pause = inner, tries, first_pause

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(self.tries):
            response = await self.inner.handle_async_request(request)
            if response.status_code != BUSY or attempt == self.tries - 1:
                return response
            await response.aclose()
            await asyncio.sleep(self.first_pause * 2**attempt * random.uniform(0.5, 1.5))  # noqa: S311 (jitter)
        raise AssertionError("unreachable: the last try returns")

    async def aclose(self) -> None:
        await self.inner.aclose()


def _transport() -> httpx.AsyncHTTPTransport:
    """httpx's transport with the settings ``PrefectClient`` gives its default one."""
    from prefect.settings import (
        PREFECT_API_ENABLE_HTTP2,
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
    )

    if PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
        verify = ssl.create_default_context()
        verify.check_hostname = False
        verify.verify_mode = ssl.CERT_NONE
    else:
        import certifi

        verify = ssl.create_default_context(
            cafile=PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=25)
    return httpx.AsyncHTTPTransport(verify=verify, http2=PREFECT_API_ENABLE_HTTP2.value(),
                                    limits=limits)


@asynccontextmanager
async def quick_client() -> AsyncIterator[Any]:
    """A ``PrefectClient`` that retries a busy server within about 1.6 s, then gives up."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    if not PREFECT_API_URL.value():  # Prefect's ephemeral server: its own in-process transport
        async with get_client() as client:
            yield client
        return
    with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}):
        async with get_client(httpx_settings={"transport": RetryBusy(_transport())}) as client:
            yield client
