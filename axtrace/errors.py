"""The one exception tree of AxTrace, mapped to HTTP status codes in ``axtrace.api`` only.

    AxTraceError
    ├── InvalidInput          400/422  a request or file that cannot be used; names the field
    │   ├── Malformed         400      a request that cannot be read (a header too long ...)
    │   └── Unsupported       415      a body that is not JSON (names ``content-type``)
    ├── Unauthenticated       401      no credential, or one not accepted (names the header)
    ├── NotFound              404      an alert, site or policy that does not exist
    ├── Forbidden             403      someone who may not act on this alert
    ├── Conflict              409      the alert is not in a state that allows the action
    └── Unavailable           503      Prefect or the ledger is away; try again later
"""

from __future__ import annotations


class AxTraceError(Exception):
    """Base of every error AxTrace raises on purpose."""

    status_code = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(AxTraceError):
    status_code = 422


class Malformed(InvalidInput):
    status_code = 400


class Unsupported(InvalidInput):
    status_code = 415


class Unauthenticated(AxTraceError):
    status_code = 401


class NotFound(AxTraceError):
    status_code = 404


class Forbidden(AxTraceError):
    status_code = 403


class Conflict(AxTraceError):
    status_code = 409


class Unavailable(AxTraceError):
    status_code = 503
