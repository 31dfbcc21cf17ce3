"""One sample out of a Prometheus scrape, parsed by prometheus_client's own text parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def metric_value(scrape: str, family: str, agent: str, suffix: str = "", **labels: str) -> float:
    """The value of ``family + suffix`` for ``agent`` (and ``labels``); AssertionError if none."""
    wanted = {"agent": agent, **labels}
    for fam in text_string_to_metric_families(scrape):
        if fam.name != family:
            continue
        for s in fam.samples:
            if s.name == family + suffix and all(s.labels.get(k) == v for k, v in wanted.items()):
                return float(s.value)
    raise AssertionError(f"no {family}{suffix} for {agent}")
