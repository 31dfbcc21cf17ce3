"""What ``latcli compare`` decided (typed), and its JSON contract ``latcli.compare/v1``
(DESIGN §6). How it decides: :mod:`latcli.engines.compare`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from latcli.core.errors import ExitCode
from latcli.core.stats_compare import Change, UTest, median

SCHEMA = "latcli.compare/v1"


@dataclass(frozen=True)
class Metric:
    """What is compared; ``unit`` is "ms", "req/s" or "fraction"."""

    name: str  # canonical: "p50", "mean", "rps", "error_rate", "first_artifact.p95"
    unit: str
    percentile: float | None = None
    phase: str | None = None

    @property
    def higher_is_worse(self) -> bool:
        return self.unit != "req/s"


@dataclass(frozen=True)
class Side:
    """One side of the comparison: its files and their pooled per-interval samples."""

    files: tuple[str, ...]
    samples: tuple[float, ...]
    interval_s: float  # the usual interval length, for "run at least N s"
    endpoints: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()  # runs whose numbers deserve doubt (invalid, interrupted)

    @property
    def n(self) -> int:
        return len(self.samples)

    def as_json(self) -> dict[str, Any]:
        mid = median(self.samples) if self.samples else None
        return {"files": list(self.files), "n": self.n, "median": _r(mid)}


@dataclass(frozen=True)
class CompareReport:
    """The outcome; ``verdict`` None when ``reason`` says the data cannot decide."""

    metric: Metric
    baseline: Side
    candidate: Side
    confidence: float
    threshold: float
    seed: int
    test: UTest | None
    ratio: float | None
    ci: tuple[float, float] | None
    verdict: Change | None
    reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def alpha(self) -> float:
        return round(1.0 - self.confidence, 12)

    def exit_code(self) -> ExitCode:
        """1 slower, 0 same or faster, 2 when the data cannot decide."""
        if self.verdict is None:
            return ExitCode.USAGE
        return ExitCode.FAILED if self.verdict is Change.SLOWER else ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "metric": self.metric.name,
            "unit": self.metric.unit,
            "baseline": self.baseline.as_json(),
            "candidate": self.candidate.as_json(),
            "ratio": _r(self.ratio, 6),
            "ci": None if self.ci is None else [_r(self.ci[0], 6), _r(self.ci[1], 6)],
            "p_value": None if self.test is None else self.test.p_value,
            "verdict": None if self.verdict is None else self.verdict.value,
            "reason": self.reason,
            "test": "mann-whitney-u",
            "method": None if self.test is None else self.test.method,
            "alpha": self.alpha,
            "confidence": self.confidence,
            "threshold": self.threshold,
            "seed": self.seed,
            "notes": list(self.notes),
        }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# --- samples from reports ------------------------------------------------------------------
