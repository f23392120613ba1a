"""The one exception tree of AxTrace: each class declares its HTTP status, the exit code of
the CLI, and where its ``field`` is (body, query); ``axtrace.api`` alone turns them into
responses (``{"detail": [{"loc": [location, *field], "msg", "type"}]}``) and ``axtrace.cli``
alone into exit codes.

    AxTraceError                  500  exit 2
    ├── InvalidInput              422  exit 2   a request or file that cannot be used
    │   ├── Malformed             400           a request that cannot be read (a header ...)
    │   ├── Unsupported           415           a body that is not JSON (``content-type``)
    │   ├── TooLarge              413           a body over ``AXTRACE_MAX_BODY_BYTES``
    │   ├── InvalidQuery          422           a query parameter (``loc`` starts "query")
    │   ├── ParseError            422           intake/envelope.py: a body a source cannot use
    │   │   ├── TooDeep           400           nesting deeper than allowed
    │   │   ├── TooMany           413           more alerts than one delivery may carry
    │   │   ├── UnknownSite       422           intake/service.py: a site not applied
    │   │   ├── NothingOpen       422           intake/service.py: a resolve with nothing open
    │   │   └── AmbiguousResolve  422           intake/service.py: a key open at several sites
    │   └── BadSetting            422           settings.py: an AXTRACE_* name or value
    ├── Unauthenticated           401  exit 4   no credential, or one not accepted
    │   └── SignatureError        401           intake/signatures.py: a signature that fails
    ├── NotFound                  404           an alert, site or policy that does not exist
    ├── Forbidden                 403  exit 4   someone who may not act on this alert
    ├── Conflict                  409           the alert is not in a state that allows it
    └── Unavailable               503  exit 3   Prefect or the ledger is away; try again later
        └── NoLedgerKey           503           ledger/seal.py: the seal key cannot be read
"""

from __future__ import annotations


class AxTraceError(Exception):
    """Base of every error AxTrace raises on purpose."""

    status_code = 500
    exit_code = 2
    location = "body"

    def __init__(self, message: str, *, field: str | None = None,
                 location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if location is not None:  # "path" for a path parameter; the class says otherwise
            self.location = location


class InvalidInput(AxTraceError):
    status_code = 422


class Malformed(InvalidInput):
    status_code = 400


class Unsupported(InvalidInput):
    status_code = 415


class TooLarge(InvalidInput):
    status_code = 413


class InvalidQuery(InvalidInput):
    location = "query"


class Unauthenticated(AxTraceError):
    status_code = 401
    exit_code = 4


class NotFound(AxTraceError):
    status_code = 404


class Forbidden(AxTraceError):
    status_code = 403
    exit_code = 4


class Conflict(AxTraceError):
    status_code = 409


class Unavailable(AxTraceError):
    status_code = 503
    exit_code = 3  # as "the API is not reachable": a script may try again
