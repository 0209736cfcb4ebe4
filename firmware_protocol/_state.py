"""Every state of a band's workout and every legal move between them: all of it is here.

As in h11's ``_state.py``, the band's code never compares states to decide
what is allowed: it asks :func:`transition`, and a move that is not in the
table is refused (the band NACKs it with ``BAD_STATE``). A firmware author
can port this table as it stands.

``IDLE`` is a band with no workout since boot; ``DONE`` and ``STOPPED`` are a
workout that ended (its identity stays readable in CAPABILITIES until the
next START). Between START and the start time the workout is ``RUNNING`` in
round 0.
"""

from __future__ import annotations

import enum
from typing import Final

from .enums import SessionStateCode as S

__all__ = ["ACTIVE", "LIVE", "TRANSITIONS", "Trigger", "transition"]


class Trigger(enum.Enum):
    """What moves a workout: a command from the host, a gesture, or the band's own timeline."""

    START = "start"  # START accepted
    PAUSE = "pause"
    RESUME_EXERCISE = "resume_exercise"  # RESUME, the timeline is in an exercise step
    RESUME_REST = "resume_rest"  # RESUME, the timeline is in the rest between rounds
    SKIP = "skip"
    ADJUST = "adjust"
    EXERCISE = "exercise"  # the timeline reached an exercise step
    REST = "rest"  # the timeline reached the rest between rounds
    FINISH = "finish"  # the timeline reached its end
    STOP = "stop"  # STOP from the host, or the stop / pain gesture


_ENDED: Final = {Trigger.START: S.RUNNING}
_MOVING: Final = {
    Trigger.PAUSE: S.PAUSED,
    Trigger.SKIP: None,  # stays where it is until the timeline reaches the next step
    Trigger.ADJUST: None,
    Trigger.EXERCISE: S.RUNNING,
    Trigger.REST: S.ROUND_REST,
    Trigger.FINISH: S.DONE,
    Trigger.STOP: S.STOPPED,
}

# state -> trigger -> next state (None: the state does not change).
TRANSITIONS: Final[dict[S, dict[Trigger, S | None]]] = {
    S.IDLE: dict(_ENDED),
    S.RUNNING: dict(_MOVING),
    S.ROUND_REST: dict(_MOVING),
    S.PAUSED: {
        Trigger.RESUME_EXERCISE: S.RUNNING,
        Trigger.RESUME_REST: S.ROUND_REST,
        Trigger.SKIP: None,  # the step changes at RESUME
        Trigger.ADJUST: None,
        Trigger.STOP: S.STOPPED,
    },
    S.DONE: dict(_ENDED),
    S.STOPPED: dict(_ENDED),
}

ACTIVE: Final = frozenset({S.RUNNING, S.ROUND_REST})  # the timeline moves
LIVE: Final = frozenset({S.RUNNING, S.ROUND_REST, S.PAUSED})  # a workout is under way


def transition(state: S, trigger: Trigger) -> S | None:
    """The state after ``trigger``, or None when ``trigger`` is illegal in ``state``.

    A legal trigger that leaves the state as it is returns ``state`` itself.
    """
    moves = TRANSITIONS.get(state)
    if moves is None or trigger not in moves:
        return None
    target = moves[trigger]
    return state if target is None else target
