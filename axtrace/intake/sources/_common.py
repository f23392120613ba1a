"""What every source parser shares: reading a decoded JSON body safely and turning its parts
into envelope fields, raising only :class:`~axtrace.intake.envelope.ParseError`.

Rules that hold for every source (the registry checks the envelopes once more):

- A site is a slug, ``^[a-z0-9][a-z0-9-]{0,62}$`` (the same rule as ``OwnershipPolicy.site``);
  anything else is refused, naming the field and showing the value as a short ``repr``.
- Labels are ``str -> str``: numbers and booleans are turned into text, ``null`` values are
  dropped, nested objects and lists are refused. At most 64 labels, 256 characters per name
  and value.
- Titles are cut to 500 characters. Evidence URLs must be ``http(s)`` and at most 2000
  characters; third-party sources drop any other URL, the native source refuses it.
- Keys longer than 255 characters are refused, except where a source allows longer ones
  (Opsgenie aliases, Azure alert ids): those are replaced by ``sha256-<hex>`` of the key, which
  is stable, so repeats still match.
- Times are ISO 8601 / RFC 3339; a time without an offset is taken as UTC, and Go's zero
  time (``0001-01-01T00:00:00Z``, Alertmanager's "no end") reads as no time.
- What Python's JSON decoder accepts but no JSON store does is refused anywhere in an envelope:
  text with unpaired surrogates (``"\\ud800"``) and ``NaN``/``Infinity``.
- Field paths in errors name the body's fields, escaped and cut so they are always safe to
  send back; bad values are shown as a ``repr`` of at most 80 characters.
- A body nests at most ``MAX_DEPTH`` (32) objects and arrays deep (``check_depth``, run by
  the registry before any parser): deeper is a 400 naming the first field too deep, never a
  ``RecursionError``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import reprlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pydantic import ValidationError

from axtrace.intake.envelope import AlertEnvelope, ParseError, SourceConfig, TooDeep
from axtrace.vocabulary import SITE_SLUG_RE

MAX_LABELS = 64
MAX_LABEL_CHARS = 256
MAX_KEY_CHARS = 255
MAX_TITLE_CHARS = 500
MAX_DETECTOR_CHARS = 200
MAX_VERSION_CHARS = 100
MAX_URL_CHARS = 2000
MAX_DEPTH = 32
MAX_PATH_CHARS = 200

_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?",
    re.ASCII,
)
_REPR = reprlib.Repr()
_REPR.maxstring = 70
_REPR.maxother = 70
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 4


def show(value: object) -> str:
    """A short, safe rendering of a bad value for an error message (at most 80 characters)."""
    text = _REPR.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def join(prefix: str, *parts: str | int) -> str:
    """The dotted path of a field below ``prefix`` (``join("alerts", 0, "labels")``); names
    from the body are escaped to printable UTF-8 and cut to 80 characters, so a path is always
    safe to send back."""
    names = [prefix] if prefix else []
    return ".".join([*names, *(_safe_name(str(part)) for part in parts)])


def _safe_name(name: str) -> str:
    if not name.isascii() or not name.isprintable():
        name = name.encode("utf-8", "backslashreplace").decode("utf-8")
        name = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)
    return name if len(name) <= 80 else name[:77] + "..."


def kind(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def need_obj(value: object, field: str) -> dict[str, Any]:
    """``value`` as a JSON object, or a ParseError."""
    if not isinstance(value, dict):
        raise ParseError(f"expected an object, got {kind(value)}", field=field or "body")
    return value


def opt_obj(value: object, field: str) -> dict[str, Any]:
    """An optional JSON object: ``null`` or missing reads as empty."""
    return {} if value is None else need_obj(value, field)


def need_list(value: object, field: str) -> list[Any]:
    """``value`` as a JSON array, or a ParseError."""
    if not isinstance(value, list):
        raise ParseError(f"expected an array, got {kind(value)}", field=field or "body")
    return value


def opt_list(value: object, field: str) -> list[Any]:
    """An optional JSON array: ``null`` or missing reads as empty."""
    return [] if value is None else need_list(value, field)


def opt_str(value: object, field: str) -> str | None:
    """An optional string: ``null``, missing or blank reads as ``None``; other types are refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParseError(f"expected a string, got {kind(value)}", field=field)
    return value if value.strip() else None


def need_str(value: object, field: str) -> str:
    """A required, non-blank string."""
    text = opt_str(value, field)
    if text is None:
        raise ParseError("is missing or blank", field=field)
    return text


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters (``None`` stays ``None``)."""
    return None if text is None else text[:limit]


def title(*candidates: str | None, fallback: str) -> str:
    """The first non-blank candidate, stripped and cut to 500 characters, else ``fallback``."""
    for candidate in candidates:
        if candidate is not None and candidate.strip():
            return candidate.strip()[:MAX_TITLE_CHARS]
    return fallback[:MAX_TITLE_CHARS]


def parse_time(value: object, field: str) -> datetime | None:
    """An RFC 3339 time as an aware ``datetime``; ``None`` for no time or Go's zero time."""
    text = opt_str(value, field)
    if text is None:
        return None
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise ParseError(f"expected an ISO 8601 time, got {show(value)}", field=field)
    try:
        return _to_datetime(match)
    except (ValueError, OverflowError) as exc:
        raise ParseError(f"not a valid time: {show(value)} ({exc})", field=field) from None


def _to_datetime(match: re.Match[str]) -> datetime | None:
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    if year == 1:  # Go's zero time: Alertmanager's "no end yet"
        return None
    micro = int((match[7] or "0")[:6].ljust(6, "0"))
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=_zone(match))


def _zone(match: re.Match[str]) -> timezone:
    if match[9] is None:
        return UTC
    hours, minutes = int(match[10]), int(match[11])
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if match[9] == "-" else offset)


def digest(*parts: object) -> str:
    """A stable hex digest of JSON-able ``parts`` (ASCII-escaped, so any text hashes)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def derived_key(prefix: str, *parts: object) -> str:
    """A key for an alert that did not name one: ``<prefix>-<32 hex>`` from ``parts``."""
    return f"{prefix}-{digest(*parts)[:32]}"


def identity(raw: str, field: str, *, hash_long: bool = False) -> str:
    """An alert key as sent; over 255 characters it is hashed (``hash_long``) or refused."""
    if len(raw) <= MAX_KEY_CHARS:
        return raw
    if hash_long:
        return f"sha256-{digest(raw)}"
    raise ParseError(f"is longer than {MAX_KEY_CHARS} characters ({len(raw)})", field=field)


def clean_labels(value: object, field: str) -> dict[str, str]:
    """Labels as ``str -> str`` under the limits in the module docstring."""
    raw = opt_obj(value, field)
    texts = {name: _label_value(item, join(field, name)) for name, item in raw.items()}
    labels = {name: text for name, text in texts.items() if text is not None}
    if len(labels) > MAX_LABELS:
        raise ParseError(f"has {len(labels)} labels; at most {MAX_LABELS} allowed", field=field)
    for name, item in labels.items():
        _check_label(name, item, field)
    return labels


def _label_value(value: object, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    message = f"label values must be text, numbers or booleans, got {kind(value)}"
    raise ParseError(message, field=field)


def _check_label(name: str, value: str, field: str) -> None:
    if not name:
        raise ParseError("label names must not be empty", field=field)
    if len(name) > MAX_LABEL_CHARS:
        raise ParseError(f"label name {show(name)} is longer than {MAX_LABEL_CHARS}", field=field)
    if len(value) > MAX_LABEL_CHARS:
        message = f"label value is longer than {MAX_LABEL_CHARS} characters ({len(value)})"
        raise ParseError(message, field=join(field, name))


def check_slug(value: object, field: str) -> str:
    """``value`` if it is a site slug, else a ParseError that shows it safely."""
    if isinstance(value, str) and SITE_SLUG_RE.fullmatch(value):
        return value
    raise ParseError(
        "site must be a slug of lowercase letters, digits and hyphens starting with a letter "
        f"or digit, at most 63 characters, such as 'berlin-plant'; got {show(value)}",
        field=field,
    )


def pick_site(candidates: Iterable[tuple[str, object]], config: SourceConfig) -> str | None:
    """The first site named by ``(field, value)`` candidates, else the configured default."""
    for field, value in candidates:
        if value is not None and value != "":
            return check_slug(value, field)
    if config.default_site is None:
        return None
    return check_slug(config.default_site, "config.default_site")


def url(value: object, field: str, *, strict: bool = False) -> str | None:
    """An ``http(s)`` URL of at most 2000 characters; others are dropped, or refused if strict."""
    text = opt_str(value, field)
    if text is None:
        return None
    text = text.strip()
    if text.lower().startswith(("http://", "https://")) and len(text) <= MAX_URL_CHARS:
        return text
    if strict:
        message = f"expected an http(s) URL of at most {MAX_URL_CHARS} characters"
        raise ParseError(message, field=field)
    return None


def severity(value: str | None, mapping: dict[str, str], default: str = "high") -> str:
    """The envelope severity for a source's own word (case-insensitive); unknown -> default."""
    if value is None:
        return default
    return mapping.get(value.strip().lower(), default)


def confidence(value: object, field: str) -> float | None:
    """A probability in [0, 1], or ``None``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParseError(f"expected a number between 0 and 1, got {kind(value)}", field=field)
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= 1:
        raise ParseError(f"expected a number between 0 and 1, got {show(value)}", field=field)
    return number


def present(obj: dict[str, Any], *names: str) -> dict[str, Any]:
    """The entries of ``obj`` among ``names`` that are present and not ``null``."""
    return {name: obj[name] for name in names if obj.get(name) is not None}


def check_depth(value: object, field: str = "", limit: int = MAX_DEPTH) -> None:
    """Refuse a body whose objects and arrays nest more than ``limit`` deep (``TooDeep``,
    400), naming the first field too deep. Walks without recursion."""
    pending: list[tuple[object, str, int]] = [(value, field, 0)]
    while pending:
        item, where, depth = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if depth >= limit:
            shown = where if len(where) <= MAX_PATH_CHARS else where[:MAX_PATH_CHARS - 3] + "..."
            raise TooDeep(f"nests more than {limit} objects or arrays deep", field=shown or "body")
        children = item.items() if isinstance(item, dict) else enumerate(item)
        pending.extend((child, join(where, name), depth + 1) for name, child in children)


def check_text(value: object, field: str) -> None:
    """Refuse what cannot be stored as JSON although Python's decoder lets it through: text
    with unpaired surrogates (from ``\\ud800`` escapes), which no UTF-8 encoder accepts, and
    ``NaN``/``Infinity``. Walks without recursion, so any depth of nesting is safe."""
    pending: list[tuple[object, str]] = [(value, field)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, dict):
            pending.extend((name, where) for name in item)
            pending.extend((child, join(where, str(name))) for name, child in item.items())
        elif isinstance(item, list):
            pending.extend((child, join(where, index)) for index, child in enumerate(item))
        elif isinstance(item, str) and not item.isascii():
            _encodable(item, where)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ParseError("NaN and Infinity are not JSON numbers", field=where)


def _encodable(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError("contains an unpaired surrogate, which is not text", field=field) from None


def make_envelope(field: str, **fields: Any) -> AlertEnvelope:
    """An ``AlertEnvelope``; a value the model refuses becomes a ParseError naming its field."""
    for name, value in fields.items():
        check_text(value, join(field, name))
    try:
        return AlertEnvelope(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = join(field, *(str(part) for part in error["loc"]))
        raise ParseError(error["msg"], field=where) from None
