"""Plain HTTP to the test stack's Prefect API, retried on 503 as Prefect's own client does.

A Prefect server on SQLite answers 503 ("database is locked") while the 2 cores are busy; its
Python client retries that, a bare HTTP call must too.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

RETRY_DELAYS = (0.5, 1, 2, 4, 8)


def prefect(method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> httpx.Response:
    """``method`` ``PREFECT_API_URL + path``; raises on an error answer (404 too, unless
    ``missing_ok``)."""
    url = os.environ["PREFECT_API_URL"] + path
    response = httpx.request(method, url, timeout=30, **kwargs)
    for delay in RETRY_DELAYS:
        if response.status_code != 503:
            break
        time.sleep(delay)
        response = httpx.request(method, url, timeout=30, **kwargs)
    if not (missing_ok and response.status_code == 404):
        response.raise_for_status()
    return response
