"""A class the screen can show, without bands: a snapshot that changes when told to."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

from companion.group_state import ClassSnapshot, ParticipantSnapshot, heart_zone
from companion.state import BandKind, CueMode, SessionPhase

NAMES = (
    "Ana",
    "Ben",
    "Chloé",
    "Dev",
    "Eli",
    "<b>Fay</b>",  # markup in a name must show as text, never as bold
    "Gus",
    "Hana",
    "Ivo",
    "Jo",
    "Kai",
    "Lena",
)
MAX_HR = 190
# Heart rates giving zones 0-5 (0: below 50 % of max), then 1-5 again; the fourth band
# is not heard from, so it has no reading at all.
HEART_RATES = (80, 100, 120, 130, 140, 160, 180, 104, 125, 145, 170, 175)
ZONES = (0, 1, 2, 0, 3, 4, 5, 1, 2, 3, 4, 5)


def participant(index: int, heart_rate: int | None, **changes: object) -> ParticipantSnapshot:
    """Participant ``index`` of the class (a band-timed companion band unless changed)."""
    base = ParticipantSnapshot(
        band_id=f"band-{index:02d}",
        name=NAMES[index],
        kind=BandKind.COMPANION,
        cue_mode=CueMode.BAND,
        phase=SessionPhase.RUNNING,
        heart_rate=heart_rate,
        max_hr=MAX_HR,
        zone=heart_zone(heart_rate, MAX_HR),
        battery=80,
        link_up=True,
        seen_s_ago=0.4,
        last_cue_error_ms=1.5,
        cues_fired=12,
        cues_missed=0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def twelve(offset: int = 0) -> ClassSnapshot:
    """Twelve participants, zones 0-5, one low battery, one unseen for 30 s, one link down.

    ``offset`` adds to every heart rate, so a second snapshot differs on every tile.
    """
    participants = []
    for index, bpm in enumerate(HEART_RATES):
        heart_rate: int | None = bpm + offset
        changes: dict[str, object] = {}
        if index == 2:
            changes = {"battery": 12}
        elif index == 3:
            heart_rate, changes = None, {"seen_s_ago": 30.0}
        elif index == 4:
            changes = {"kind": BandKind.HR_STRAP, "cue_mode": CueMode.SCREEN, "link_up": False}
        elif index == 7:
            changes = {"last_cue_error_ms": -3.2, "cues_missed": 1}
        participants.append(participant(index, heart_rate, **changes))
    return ClassSnapshot(
        class_id="tuesday-6pm",
        plan="back-5",
        phase=SessionPhase.RUNNING,
        round=2,
        rounds=5,
        exercise="Squats",
        next_exercise="Burpees",
        step_remaining_s=42.0,
        elapsed_s=300.0,
        total_s=1500.0,
        participants=tuple(participants),
    )


class FakeClass:
    """Satisfies :class:`companion.screen.ClassSource`: ``show`` swaps the snapshot."""

    def __init__(self, snapshot: ClassSnapshot) -> None:
        self._snapshot = snapshot
        self._changed = asyncio.Event()
        self.followers = 0

    def snapshot(self) -> ClassSnapshot:
        return self._snapshot

    def show(self, snapshot: ClassSnapshot) -> None:
        self._snapshot = snapshot
        self._changed.set()

    async def events(self) -> AsyncIterator[object]:
        self.followers += 1
        while True:
            await self._changed.wait()
            self._changed.clear()
            yield None
