"""A Prefect client for AxTrace's own loops (the dispatcher): quick on a busy server.

A Prefect server on SQLite answers 503 when a write meets another (``SQLITE_BUSY``: a request
that read, then writes, after another connection wrote; SQLite does not wait then). Under a
steady stream of runs that is a few run creations a minute, and the same call goes through a
moment later. Prefect's client waits 2, 4, 8, 16 and 32 s between its retries (about a minute
in all), which put one alert a minute behind and, before the dispatcher pipelined, every
alert behind it. Here a 503 is tried again after 50 ms, doubling up to 0.4 s, twelve tries in
about 3.5 s. In the dispatcher Prefect's own retries are off (even then its client pauses 2 s
before it hands back a 503), and what still fails goes back to the outbox, which tries again
on its own backoff; in a warm execution Prefect's retries stay as they are, behind these.

The transport is made with the connection settings Prefect's client would use (TLS
verification or ``PREFECT_API_TLS_INSECURE_SKIP_VERIFY``, ``PREFECT_API_SSL_CERT_FILE``,
HTTP/2, its pool limits): passing a transport replaces httpx's default one.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

BUSY = 503
PAUSES = (0.05, 0.1, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4)
"""Seconds between the tries of a request the server was too busy for (twelve tries within
about 3.5 s), each jittered by up to half either way."""


def _jittered() -> list[float]:
    return [pause * random.uniform(0.5, 1.5) for pause in PAUSES]  # noqa: S311 (jitter)


async def until_not_busy(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """``send()`` again while it answers 503, at most ``len(PAUSES)`` more times."""
    for pause in [*_jittered(), None]:
        response = await send()
        if response.status_code != BUSY or pause is None:
            return response
        await response.aclose()
        await asyncio.sleep(pause)
    raise AssertionError("unreachable: the last try returns")


def until_not_busy_sync(send: Callable[[], httpx.Response]) -> httpx.Response:
    for pause in [*_jittered(), None]:
        response = send()
        if response.status_code != BUSY or pause is None:
            return response
        response.close()
        time.sleep(pause)
    raise AssertionError("unreachable: the last try returns")


class RetryBusy(httpx.AsyncBaseTransport):
    """Sends a request again, soon, while the server answers 503."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await until_not_busy(lambda: self.inner.handle_async_request(request))

    async def aclose(self) -> None:
        await self.inner.aclose()


def retry_busy_api_in_this_process(api_url: str) -> None:
    """Every httpx request of this process to the Prefect API is tried again soon while the
    server answers 503, before Prefect's client sees it (and would wait 2 s, then 4 ...).

    For a process AxTrace owns, a warm execution, where Prefect's engine makes its own clients
    and takes no transport; like sharing TLS contexts there, it changes this child only.
    Requests to any other address (a notification's webhook) are sent as before.
    """
    api = httpx.URL(api_url)

    def ours(url: httpx.URL) -> bool:
        return (url.scheme, url.host, url.port) == (api.scheme, api.host, api.port)

    plain_async = httpx.AsyncHTTPTransport.handle_async_request
    plain_sync = httpx.HTTPTransport.handle_request

    async def handle_async(self: httpx.AsyncHTTPTransport,
                           request: httpx.Request) -> httpx.Response:
        if not ours(request.url):
            return await plain_async(self, request)
        return await until_not_busy(lambda: plain_async(self, request))

    def handle(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        if not ours(request.url):
            return plain_sync(self, request)
        return until_not_busy_sync(lambda: plain_sync(self, request))

    httpx.AsyncHTTPTransport.handle_async_request = handle_async  # type: ignore[method-assign]
    httpx.HTTPTransport.handle_request = handle  # type: ignore[method-assign]


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
    """A ``PrefectClient`` that retries a busy server within about 3.5 s, then gives up."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    if not PREFECT_API_URL.value():  # Prefect's ephemeral server: its own in-process transport
        async with get_client() as client:
            yield client
        return
    with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}):
        async with get_client(httpx_settings={"transport": RetryBusy(_transport())}) as client:
            yield client
