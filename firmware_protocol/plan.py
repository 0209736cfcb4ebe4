"""The workout plan as the band stores it: steps, rounds and vibration patterns.

Names only (no tips: the band has no room for prose). Cues refer to patterns
by :class:`CueKind`, so a plan can make "switch side" feel different from
"next exercise".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from . import _validate as v
from .enums import CueKind, StepKind
from .errors import LocalProtocolError

__all__ = [
    "DEFAULT_PATTERNS",
    "PLAN_ID_BYTES",
    "Pattern",
    "Pulse",
    "WirePlan",
    "WireStep",
    "default_pattern",
    "plan_id",
]

PLAN_ID_BYTES = 8


@dataclass(frozen=True, slots=True)
class Pulse:
    """One buzz: motor on for ``on_ms``, then off for ``off_ms``."""

    on_ms: int
    off_ms: int

    def __post_init__(self) -> None:
        v.check_uint(self, "on_ms", self.on_ms, 16)
        v.check_uint(self, "off_ms", self.off_ms, 16)


@dataclass(frozen=True, slots=True)
class Pattern:
    """The vibration played for one kind of cue; ``intensity`` 0..255."""

    cue: CueKind
    intensity: int
    pulses: tuple[Pulse, ...]

    def __post_init__(self) -> None:
        v.check_uint(self, "cue", int(self.cue), 8)
        v.check_uint(self, "intensity", self.intensity, 8)
        if not 1 <= len(self.pulses) <= 32:
            raise LocalProtocolError("Pattern.pulses must hold 1 to 32 pulses")

    @property
    def duration_ms(self) -> int:
        """How long the whole pattern takes to play."""
        return sum(p.on_ms + p.off_ms for p in self.pulses)


def _pulses(*pairs: tuple[int, int]) -> tuple[Pulse, ...]:
    return tuple(Pulse(on, off) for on, off in pairs)


# Told apart by rhythm alone: one short, one long, two short, three medium,
# long-short-long, and a fast burst for "stopped".
DEFAULT_PATTERNS: tuple[Pattern, ...] = (
    Pattern(CueKind.COUNTDOWN, 160, _pulses((120, 0))),
    Pattern(CueKind.NEXT_EXERCISE, 255, _pulses((600, 0))),
    Pattern(CueKind.SWITCH_SIDE, 220, _pulses((150, 120), (150, 0))),
    Pattern(CueKind.ROUND_DONE, 230, _pulses((300, 150), (300, 150), (300, 0))),
    Pattern(CueKind.WORKOUT_DONE, 255, _pulses((600, 150), (200, 150), (600, 0))),
    Pattern(CueKind.STOPPED, 255, _pulses(*([(80, 60)] * 4 + [(80, 0)]))),
)


@dataclass(frozen=True, slots=True)
class WireStep:
    """One step: its name as the band may show it, what it is, and how long it lasts."""

    name: str
    kind: StepKind
    duration_ms: int
    switch_side: bool = False

    def __post_init__(self) -> None:
        v.check_string(self, "name", self.name)
        v.check_uint(self, "kind", int(self.kind), 8)
        v.check_uint(self, "duration_ms", self.duration_ms, 32)
        if self.duration_ms == 0:
            raise LocalProtocolError("WireStep.duration_ms must be positive")


@dataclass(frozen=True, slots=True)
class WirePlan:
    """A whole plan: ``steps`` repeated ``rounds`` times, ``round_rest_ms`` between rounds.

    ``countdown`` is how many one-second countdown cues precede each transition (0..5).
    """

    name: str
    rounds: int
    round_rest_ms: int
    countdown: int
    steps: tuple[WireStep, ...]
    patterns: tuple[Pattern, ...] = DEFAULT_PATTERNS

    def __post_init__(self) -> None:
        v.check_string(self, "name", self.name)
        v.check_uint(self, "rounds", self.rounds, 8)
        v.check_uint(self, "round_rest_ms", self.round_rest_ms, 32)
        if self.rounds < 1:
            raise LocalProtocolError("WirePlan.rounds must be at least 1")
        if not 0 <= self.countdown <= 5:
            raise LocalProtocolError("WirePlan.countdown must be 0 to 5")
        if not 1 <= len(self.steps) <= 255:
            raise LocalProtocolError("WirePlan.steps must hold 1 to 255 steps")
        if len(self.patterns) > 255:
            raise LocalProtocolError("WirePlan.patterns must hold at most 255 patterns")

    def pattern_for(self, cue: CueKind) -> Pattern:
        """The plan's pattern for ``cue``, falling back to the default one."""
        return next((p for p in self.patterns if p.cue == cue), None) or default_pattern(cue)


def default_pattern(cue: CueKind) -> Pattern:
    """The built-in pattern for ``cue`` (a long buzz for a kind this firmware does not know)."""
    return next((p for p in DEFAULT_PATTERNS if p.cue == cue), DEFAULT_PATTERNS[1])


def plan_id(encoded_plan: bytes) -> bytes:
    """The plan's id: the first 8 bytes of SHA-256 of its encoding, so a re-push is recognised."""
    return hashlib.sha256(encoded_plan).digest()[:PLAN_ID_BYTES]
