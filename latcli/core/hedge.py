"""Hedging a streamed send: the race policy, sans-I/O (issue 12 item 2).

A hedge is a second stream started on another replica while the first has given no answer
text yet (Dean & Barroso, "The Tail at Scale": a backup request after the p95). Once a stream
delivers its first piece of answer text the answer is committed: the user is reading it, so
no hedge starts after that and the other stream loses. A loser's stream is closed, and its A2A
task cancelled (``CancelTask``): closing the stream alone leaves an a2a-sdk task running. Its
task id comes with its first events (Task / status update), usually long before any text.

:class:`StreamRace` holds the legs' state and answers "what now"; ``now`` is an argument.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Leg", "Move", "StreamRace"]


class Move(enum.Enum):
    """What the shell does after telling the race about one leg."""

    WAIT = "wait"  # nothing yet: keep reading every running leg
    COMMIT = "commit"  # this leg's answer is the one: keep reading it, lose the others
    CANCEL = "cancel"  # this leg lost and its task id is known: close it, cancel the task
    FAILED = "failed"  # every leg ended without an answer: the last failure is the reply


@dataclass
class Leg:
    """One stream of the race: its task id once known, whether it answered, whether it ended."""

    task_id: str | None = None
    answered_at: float | None = None
    ended: bool = False
    ok: bool = False
    cancelled: bool = False


class StreamRace:
    """Legs 0 (the first choice) and 1 (the hedge); at most one hedge per send.

    ``hedge_at``: monotonic time from which a hedge may start (the send's start plus the
    type's p95 time to first artifact); None: hedging is off or not warmed up.
    """

    def __init__(self, hedge_at: float | None) -> None:
        self.hedge_at = hedge_at
        self.legs: list[Leg] = [Leg()]
        self.winner: int | None = None

    def hedge_due(self, now: float) -> bool:
        """True when the hedge should start now: due, none started, no answer committed and
        the first leg still running."""
        return (
            self.hedge_at is not None
            and now >= self.hedge_at
            and len(self.legs) == 1
            and self.winner is None
            and not self.legs[0].ended
        )

    def start_hedge(self) -> int:
        if len(self.legs) != 1 or self.winner is not None:
            raise ValueError("a hedge starts once, before any answer")
        self.legs.append(Leg())
        return 1

    def event(self, leg: int, at: float, task_id: str | None, answered: bool) -> Move:
        """Leg ``leg`` read an event; ``answered``: its answer text has begun."""
        mine = self.legs[leg]
        mine.task_id = mine.task_id or task_id
        if self.winner is None and answered:
            mine.answered_at = at
            self.winner = leg
            return Move.COMMIT
        return self._lost(leg) if self.winner not in (None, leg) else Move.WAIT

    def ended(self, leg: int, ok: bool) -> Move:
        """Leg ``leg``'s stream ended: ``ok`` with an answer (a whole reply counts), or failed.

        A failed leg leaves the race to the other; an answer commits if nothing did before.
        Every leg failed: FAILED (the first leg failing before a hedge is due is a plain failed
        attempt: the router's failover takes over).
        """
        mine = self.legs[leg]
        mine.ended, mine.ok = True, ok
        if self.winner is None and ok:
            self.winner = leg
            return Move.COMMIT
        if self.winner is None and all(x.ended for x in self.legs):
            return Move.FAILED
        return Move.WAIT

    def hedge_pending(self) -> bool:
        """A hedge may still start (due now or later, none started, nothing committed)."""
        return (
            self.hedge_at is not None
            and len(self.legs) == 1
            and self.winner is None
            and not self.legs[0].ended
        )

    def losers(self) -> list[tuple[int, Move]]:
        """Once committed: the losing legs to cancel now (their task id is known), each once.
        A loser without an id yet is read on until an event names its task."""
        if self.winner is None:
            return []
        moves = [(i, self._lost(i)) for i in range(len(self.legs)) if i != self.winner]
        return [(i, move) for i, move in moves if move is Move.CANCEL]

    def _lost(self, leg: int) -> Move:
        mine = self.legs[leg]
        if mine.cancelled or mine.ended:
            return Move.WAIT
        if mine.task_id is None:
            return Move.WAIT  # read on until its first event names the task to cancel
        mine.cancelled = True
        return Move.CANCEL

    def close_unnamed(self) -> list[int]:
        """The winner finished: losers whose task id never came are just closed."""
        out = []
        for i, leg in enumerate(self.legs):
            if i != self.winner and not leg.ended and not leg.cancelled:
                leg.cancelled = True
                out.append(i)
        return out
