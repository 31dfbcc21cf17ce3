"""``--workers auto``: how many bench processes this machine (or pod) should run.

One worker per usable core: the cores this process may run on (``os.sched_getaffinity``)
capped by a container's CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), as Go 1.25
sets GOMAXPROCS: a pod limited to 1 CPU on a 64-core node gets 1 worker, not 64.
:func:`default_workers` is the rule for a bench run without ``--workers``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from latcli.reports.bench_model import BenchPlan

_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (
    Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)
# A worker with fewer connections leaves its event loop idle while it waits on them; two per
# worker still measured faster than one process on 2 cores (docs/benchmarks.md, issue 14).
MIN_CONNECTIONS_PER_WORKER = 2
# A fixed-count run shorter than this stays one process: spawning workers costs ~0.5 s, what
# one process needs for ~12,000 requests to nginx on loopback (docs/benchmarks.md, issue 14).
MIN_REQUESTS_FOR_WORKERS = 50_000


def quota_cores(v2: str | None, v1_quota: str | None, v1_period: str | None) -> float | None:
    """The CPU quota in cores from cgroup files' text (None: no quota, or unreadable)."""
    try:
        if v2 is not None:
            quota, period = v2.split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if v1_quota is not None and v1_period is not None:
            q = int(v1_quota)
            return None if q <= 0 else q / int(v1_period)
    except (ValueError, IndexError, ZeroDivisionError):
        return None
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = quota_cores(_read(_CGROUP_V2), _read(_CGROUP_V1[0]), _read(_CGROUP_V1[1]))
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def default_workers(plan: BenchPlan, cores: int) -> int:
    """Workers for a run without ``--workers``: one per core where that measured faster.

    Closed model only, on a URL, an agent or a --targets mix, up to one worker per
    :data:`MIN_CONNECTIONS_PER_WORKER` of this shard's connections. One process otherwise:
    the open model (one process held 10,000 req/s on 2 cores where two did not), a type target
    (the strategy balances on in-flight counts and EWMAs that must see every request), and
    a short fixed-count run (:data:`MIN_REQUESTS_FOR_WORKERS`).
    """
    share = plan.share_concurrency
    if plan.model != "closed" or share is None or plan.target_kind == "type":
        return 1
    if plan.requests is not None and plan.requests // plan.shards < MIN_REQUESTS_FOR_WORKERS:
        return 1
    return max(1, min(cores, share // MIN_CONNECTIONS_PER_WORKER))
