"""How numbers of a report read: one formatter per kind, shared by every format."""

from __future__ import annotations

EMPTY = "-"


def fmt_pct(value: float | None) -> str:
    """``62.5%``, ``4%``; ``-`` when nothing was due."""
    if value is None:
        return EMPTY
    return f"{value:.1f}".removesuffix(".0") + "%"


def fmt_duration(seconds: float | None) -> str:
    """``3.5s``, ``42s``, ``4m 12s``, ``50m``, ``2h 5m``, ``1d 3h``; ``-`` when there is none."""
    if seconds is None:
        return EMPTY
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60),
                                      ("m", 60, "s", 1)):
        if whole >= size:
            rest = whole % size // sub_size
            return f"{whole // size}{unit}" + (f" {rest}{sub}" if rest else "")
    return f"{whole}s"


def fmt_int(value: int | None) -> str:
    return EMPTY if value is None else str(value)


def fmt_ratio(value: float | None) -> str:
    return EMPTY if value is None else f"{value:g}x"


def fmt_number(value: float | None) -> str:
    return EMPTY if value is None else f"{value:g}"
