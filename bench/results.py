"""A figure as the bench reports it: the measurement, its baseline from the same run, the ratio, the target."""

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    target: str = ""
    # Whether the target is met; None when the figure has no target (reported only)
    met: bool | None = None
    runs: Sequence[float] = ()
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value


@dataclass
class Section:
    """The figures of one bench module, with what it learnt on the way (profiles, settings used)."""

    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median_figure(
    name: str,
    runs: Sequence[float],
    unit: str,
    *,
    baseline: str,
    baseline_runs: Sequence[float],
    target: str,
    meets: Callable[[float], bool],
) -> Figure:
    """A figure measured over several runs, against its baseline's runs of the same bench: medians of both."""
    value = median(runs)
    return Figure(
        name,
        value,
        unit,
        baseline=baseline,
        baseline_value=median(baseline_runs),
        target=target,
        met=meets(value),
        runs=runs,
    )


def listed(runs: Sequence[float]) -> str:
    """The runs for a note: "5,552, 5,822, 5,825"."""
    return ", ".join(f"{r:,.0f}" for r in runs)


def at_most(limit: float) -> Callable[[float], bool]:
    return lambda value: value <= limit


def at_least(limit: float) -> Callable[[float], bool]:
    return lambda value: value >= limit


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or value != value:  # NaN
        return "-"
    if unit in ("ms", "x"):
        text = f"{value:.2f}" if abs(value) < 100 else f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip() if unit != "x" else f"{text}x"
