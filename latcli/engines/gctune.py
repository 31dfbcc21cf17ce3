"""Keep Python's cyclic GC out of long-running measurement loops (watch, bench).

A full collection walks every live object: with the modules, inventory and connections of a
large run that took 0.1-0.4 s with the event loop stopped, every few seconds, and freed nothing
(watch over 1,000 agents). Freezing what start-up made means it is never walked again; what the
run itself makes is still collected, in bigger, rarer batches.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 100)  # Python's defaults: 700, 10, 10


def settle() -> tuple[int, int, int]:
    """Collect once, freeze the survivors, collect less often; returns what to restore."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return before


def restore(before: tuple[int, int, int]) -> None:
    """Undo :func:`settle`."""
    gc.set_threshold(*before)
    gc.unfreeze()
