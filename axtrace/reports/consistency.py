"""Consistency across sites: how far apart sites are, who stands out, and one score.

**Figures compared** (per site; a site without data for a figure is left out of that figure):
acknowledge-deadline compliance, resolve-deadline compliance and step adherence (higher is
better); escalation rate, ignored rate, false-positive rate, median and p90 time to acknowledge
and to resolve (lower is better).

**Spread of a figure**: the best and worst site, ``ratio`` = largest value / smallest value
(None when the smallest is 0), and the coefficient of variation (population standard deviation
/ mean) over the sites reporting it.

**Outlier flag**: site S is flagged on a figure when all of these hold:

1. at least two other sites report the figure, and S's figure rests on at least
   ``MIN_SAMPLE`` (5) alerts, so one unlucky alert does not label a site;
2. S is worse than every other site, by a gap larger than the spread (largest - smallest)
   among the other sites: S stands apart from the pack rather than ending a continuum;
3. the gap matters: at least 10 percentage points for a rate; for a duration, S takes at least
   twice as long as the slowest other site and at least 60 s longer.

The flag reads e.g. ``gamma: 62% of alerts ignored; all other sites at most 4.5%``. Only the
bad side is flagged: a site far better than the others shows in the spread and the score.

**Consistency score** (0-100, per period): the mean, over the seven procedure figures
(acknowledge compliance, resolve compliance, step adherence, escalation rate, ignored rate,
median time to acknowledge, median time to resolve) that at least two sites report, of

- for a rate: ``1 - (highest % - lowest %) / 100`` (sites 90% and 60% on time: 0.7);
- for a duration: ``fastest / slowest`` (medians 4 min and 8 min: 0.5),

times 100, rounded to 0.1. 100 means every site has the same figures; it falls as the best and
worst site drift apart. None when fewer than two sites have data: there is nothing to compare.
The false-positive rate describes the detectors, not the sites' procedure, and stays out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from axtrace.reports.model import Better, Consistency, Durations, Flag, Rate, SiteFigures, Spread
from axtrace.reports.stats import coefficient_of_variation
from axtrace.reports.text import fmt_duration, fmt_pct

MIN_SAMPLE = 5
RATE_GAP = 10.0
DURATION_GAP_S = 60.0


@dataclass(frozen=True)
class Figure:
    """One figure compared across sites: how to read it, which way is better, how to say it."""

    key: str
    label: str
    better: Better
    kind: Literal["rate", "duration"]
    in_score: bool
    phrase: str
    read: Callable[[SiteFigures], Rate | Durations]
    stat: str = "median_s"

    def value(self, site: SiteFigures) -> float | None:
        found = self.read(site)
        return found.pct if isinstance(found, Rate) else getattr(found, self.stat)

    def sample(self, site: SiteFigures) -> int:
        found = self.read(site)
        return found.of if isinstance(found, Rate) else found.n

    def fmt(self, value: float) -> str:
        return fmt_pct(value) if self.kind == "rate" else fmt_duration(value)


FIGURES: tuple[Figure, ...] = (
    Figure("ack_compliance", "Acknowledged on time", "higher", "rate", True,
           "{} of alerts acknowledged on time", lambda s: s.ack_compliance),
    Figure("resolve_compliance", "Resolved on time", "higher", "rate", True,
           "{} of alerts resolved on time", lambda s: s.resolve_compliance),
    Figure("step_adherence", "Step adherence", "higher", "rate", True,
           "{} of closed alerts followed every step", lambda s: s.step_adherence),
    Figure("escalation_rate", "Escalated", "lower", "rate", True,
           "{} of alerts escalated", lambda s: s.escalation_rate),
    Figure("ignored_rate", "Ignored", "lower", "rate", True,
           "{} of alerts ignored", lambda s: s.ignored_rate),
    Figure("tta_median", "Median time to acknowledge", "lower", "duration", True,
           "median time to acknowledge {}", lambda s: s.time_to_acknowledge),
    Figure("tta_p90", "p90 time to acknowledge", "lower", "duration", False,
           "p90 time to acknowledge {}", lambda s: s.time_to_acknowledge, "p90_s"),
    Figure("ttr_median", "Median time to resolve", "lower", "duration", True,
           "median time to resolve {}", lambda s: s.time_to_resolve),
    Figure("ttr_p90", "p90 time to resolve", "lower", "duration", False,
           "p90 time to resolve {}", lambda s: s.time_to_resolve, "p90_s"),
    Figure("false_positive_rate", "False positives", "lower", "rate", False,
           "{} of resolved alerts were false positives", lambda s: s.false_positive_rate),
)


def consistency(sites: Sequence[SiteFigures]) -> Consistency:
    """Spread of every figure, the outlier flags and the overall score of these sites."""
    spreads = [spread(figure, sites) for figure in FIGURES]
    flags = [flag for figure in FIGURES for flag in outliers(figure, sites)]
    scored = [s.consistency for s, f in zip(spreads, FIGURES, strict=True)
              if f.in_score and s.consistency is not None]
    score = round(100 * sum(scored) / len(scored), 1) if scored else None
    return Consistency(score=score, figures=spreads, flags=flags)


def reported(figure: Figure, sites: Sequence[SiteFigures]) -> list[tuple[str, float]]:
    """(site, value) of the sites that have a value for ``figure``."""
    found = ((site.site, figure.value(site)) for site in sites)
    return [(name, value) for name, value in found if value is not None]


def spread(figure: Figure, sites: Sequence[SiteFigures]) -> Spread:
    """Best, worst, ratio, coefficient of variation and consistency (0-1) of one figure."""
    values = reported(figure, sites)
    result = Spread(figure=figure.key, label=figure.label, better=figure.better,
                    unit="%" if figure.kind == "rate" else "s", sites=len(values))
    if not values:
        return result
    ordered = sorted(values, key=lambda sv: sv[1], reverse=figure.better == "higher")
    (best_site, best), (worst_site, worst) = ordered[0], ordered[-1]
    low, high = min(best, worst), max(best, worst)
    result.best_site, result.best, result.worst_site, result.worst = (
        best_site, best, worst_site, worst)
    result.ratio = round(high / low, 2) if low > 0 else None
    result.cv = coefficient_of_variation([v for _, v in values])
    if len(values) >= 2:
        result.consistency = round(figure_consistency(figure, low, high), 4)
    return result


def figure_consistency(figure: Figure, low: float, high: float) -> float:
    """1 when all sites agree; see the module docstring for rates and durations."""
    if figure.kind == "rate":
        return 1 - (high - low) / 100
    return low / high if high > 0 else 1.0


def outliers(figure: Figure, sites: Sequence[SiteFigures]) -> list[Flag]:
    """The sites that stand apart, on the bad side, from every other site on ``figure``."""
    values = dict(reported(figure, sites))
    flags = []
    for site in sites:
        value = values.get(site.site)
        others = [v for name, v in values.items() if name != site.site]
        if value is None or len(others) < 2 or figure.sample(site) < MIN_SAMPLE:
            continue
        if stands_apart(figure, value, others):
            flags.append(Flag(site=site.site, figure=figure.key, value=value,
                              message=describe(figure, site.site, value, others)))
    return flags


def stands_apart(figure: Figure, value: float, others: Sequence[float]) -> bool:
    """Rules 2 and 3 of the outlier flag."""
    worst_other = max(others) if figure.better == "lower" else min(others)
    gap = value - worst_other if figure.better == "lower" else worst_other - value
    if gap <= max(others) - min(others):
        return False
    if figure.kind == "rate":
        return gap >= RATE_GAP
    return gap >= max(worst_other, DURATION_GAP_S)


def describe(figure: Figure, site: str, value: float, others: Sequence[float]) -> str:
    """``gamma: 62% of alerts ignored; all other sites at most 4.5%``."""
    bound = "at most" if figure.better == "lower" else "at least"
    worst_other = max(others) if figure.better == "lower" else min(others)
    return (f"{site}: {figure.phrase.format(figure.fmt(value))}; "
            f"all other sites {bound} {figure.fmt(worst_other)}")
