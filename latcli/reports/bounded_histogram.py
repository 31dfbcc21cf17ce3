"""A latency histogram with its exact bounds, as a bench report carries it (encoded in JSON),
and the per-phase sets of them that ``--endpoint stream`` keeps (:data:`PHASES`).

Merging adds histograms, never raw samples (DESIGN §5): a merge has the same counts,
percentiles, min, max and mean as one run that recorded every value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from latcli.reports.bench_model import PHASES, PhaseTally
from latcli.reports.histogram import SUMMARY_KEYS, LatencyHistogram
from latcli.reports.json_fields import Fields


@dataclass
class BoundedHistogram:
    """A histogram and its exact bounds in µs: decoding restores min and max only to the
    extreme buckets' edges (within 0.1 %), so the producer's exact values travel beside it."""

    hist: LatencyHistogram = field(default_factory=LatencyHistogram)
    min_us: int = 0
    max_us: int = 0
    # The encoding as_json writes, kept once made or read: encoding walks and compresses every
    # bucket (a report's 600 timeline histograms: docs/benchmarks.md). Change ``hist`` only
    # through merge, which drops it.
    _encoded: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, h: LatencyHistogram) -> BoundedHistogram:
        return cls(h, round((h.min_ms or 0.0) * 1000), h.max_us)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BoundedHistogram:
        sum_us = d.get("sum_us")
        encoded = str(d["encoded"])
        h = LatencyHistogram.decode(encoded, None if sum_us is None else int(sum_us))
        own = cls.of(h)
        return cls(h, int(d.get("min_us", own.min_us)), int(d.get("max_us", own.max_us)), encoded)

    def merge(self, other: BoundedHistogram) -> None:
        if not other.hist.count:
            return
        self._encoded = None
        first = not self.hist.count
        self.hist.merge(other.hist)
        self.min_us = other.min_us if first else min(self.min_us, other.min_us)
        self.max_us = other.max_us if first else max(self.max_us, other.max_us)

    def _clamp(self, ms: float) -> float:
        return min(max(ms, self.min_us / 1000.0), self.max_us / 1000.0)

    def percentile_ms(self, p: float) -> float | None:
        value = self.hist.percentile_ms(p)
        return None if value is None else self._clamp(value)

    def summary(self) -> dict[str, float]:
        """min, p50 ... p99.99, max, mean in ms, within the exact bounds; zeros when empty."""
        s = self.hist.summary()
        if not self.hist.count:
            return s
        return {k: round(v if k == "mean" else self._clamp(v), 3) for k, v in s.items()}

    def as_json(self) -> dict[str, Any]:
        if self._encoded is None:
            self._encoded = self.hist.encode().decode("ascii")
        return {
            "encoded": self._encoded,
            "count": self.hist.count,
            "sum_us": self.hist.sum_us,
            "min_us": self.min_us,
            "max_us": self.max_us,
        }


def merge_hists(hists: Iterable[BoundedHistogram | None]) -> BoundedHistogram | None:
    """The given histograms added into a new one; None if none is given."""
    present = [h for h in hists if h is not None]
    if not present:
        return None
    out = BoundedHistogram()
    for h in present:
        out.merge(h)
    return out


@dataclass(frozen=True)
class Spectrum:
    """A latency summary as a report gives it (``latency_ms``): min, p50 ... p99.99, max, mean
    in ms. Values are kept as the report states them (an int stays an int in the JSON)."""

    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    p99_9: float
    p99_99: float
    max: float
    mean: float

    @classmethod
    def of(cls, h: BoundedHistogram) -> Spectrum:
        s = h.summary()
        return cls(*(s[key] for key in SUMMARY_KEYS))

    @classmethod
    def from_fields(cls, f: Fields) -> Spectrum:
        """The summary of a report's object (``latency_ms``); ReportError naming a bad key."""
        return cls(*(f.number(key) for key in SUMMARY_KEYS))

    def get(self, key: str) -> float | None:
        """The value of a :data:`SUMMARY_KEYS` key (``"p99.9"``); None for any other key."""
        return getattr(self, _FIELD[key]) if key in _FIELD else None

    def __getitem__(self, key: str) -> float:
        return float(getattr(self, _FIELD[key]))

    def as_json(self) -> dict[str, float]:
        return {key: getattr(self, name) for key, name in _FIELD.items()}


_FIELD = {key: key.replace(".", "_") for key in SUMMARY_KEYS}  # "p99.9" -> Spectrum.p99_9

Phases = dict[str, BoundedHistogram]  # --endpoint stream: PHASES -> histogram
PhaseSpectra = dict[str, Spectrum]  # --endpoint stream: PHASES -> summary (phases_ms)


def phases_of(tally: PhaseTally | None) -> Phases | None:
    """A run's phase histograms with their exact bounds (None: not a stream run)."""
    return None if tally is None else {p: BoundedHistogram.of(h) for p, h in tally.hists.items()}


def phases_summary(phases: Phases | None) -> PhaseSpectra | None:
    """Each phase's summary, as ``phases_ms`` has it."""
    return None if phases is None else {p: Spectrum.of(phases[p]) for p in PHASES}


def spectra_json(spectra: PhaseSpectra | None) -> dict[str, dict[str, float]] | None:
    """``phases_ms`` as JSON."""
    return None if spectra is None else {p: s.as_json() for p, s in spectra.items()}


def spectra_from_fields(f: Fields) -> PhaseSpectra:
    """``phases_ms`` read back; ReportError naming a bad phase or key."""
    return {p: Spectrum.from_fields(f.child(p)) for p in f.obj}


def phases_json(phases: Phases | None) -> dict[str, Any] | None:
    """Each phase's histogram encoded, as ``histograms.phases`` has it."""
    return None if phases is None else {p: phases[p].as_json() for p in PHASES}


def phases_from_json(d: Mapping[str, Any] | None) -> Phases | None:
    """The inverse of :func:`phases_json` (None or empty: not a stream run)."""
    return None if not d else {p: BoundedHistogram.from_json(d[p]) for p in PHASES}


def merge_phases(parts: Iterable[Phases | None]) -> Phases | None:
    """The stream runs' phases added phase by phase; None if no part is a stream run."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    out = {p: BoundedHistogram() for p in PHASES}
    for phases in present:
        for p in PHASES:
            out[p].merge(phases[p])
    return out
