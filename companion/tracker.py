"""The session tracker: the host's mirror of a workout, with no I/O.

A :class:`SessionTracker` takes typed band events (state changes, cue
acknowledgements, heart rate, link changes) and the host's own decisions (it
started the workout, adopted it, stopped it) and returns the session events they
mean: step started, round done, a cue checked against the plan, a late or
missing cue, the end. It answers :meth:`~SessionTracker.snapshot` for any
instant. Time is always a parameter, as in :mod:`firmware_protocol`, so the
whole of a session's logic is tested without a band, a loop or a clock;
:class:`~companion.session.Session` is the async edge that feeds it, numbers
and records what it returns and fans it out to the store, the view and the relay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import firmware_protocol as fp

from .events import (
    BandStateChanged,
    Battery,
    CueFired,
    CueProblem,
    CueWarning,
    Event,
    HeartRate,
    InferredStopCause,
    RoundDone,
    SessionDone,
    SessionPaused,
    SessionResumed,
    SessionStarted,
    SessionStopped,
    StepStarted,
    StopReason,
    StopSource,
)
from .plan import Plan
from .state import BandKind, CueMode, SessionPhase, SessionSnapshot

__all__ = ["SessionTracker"]

_STOP_REASONS: Final[dict[fp.StopCause | InferredStopCause, tuple[StopReason, StopSource]]] = {
    fp.StopCause.BUTTON: (StopReason.USER, StopSource.BAND),
    fp.StopCause.PAIN: (StopReason.PAIN, StopSource.BAND),
    # A STOP this host did not send: another host.
    fp.StopCause.HOST: (StopReason.HOST, StopSource.BAND),
    InferredStopCause.REBOOT: (StopReason.REBOOT, StopSource.BAND),
}
_PHASES: Final = {
    fp.SessionStateCode.RUNNING: SessionPhase.RUNNING,
    fp.SessionStateCode.ROUND_REST: SessionPhase.ROUND_REST,
    fp.SessionStateCode.PAUSED: SessionPhase.PAUSED,
}
_END_PHASES: Final = (SessionPhase.DONE, SessionPhase.STOPPED)
_BEFORE_START_S: Final = 5.0  # heart rate this long before the start still counts (warm-up)


@dataclass(slots=True)
class _Mirror:
    """Where the band's timeline is, on the host's clock.

    ``shift_us`` is the band's reported shift (pauses add, skips subtract);
    drift corrections are not in it, so the mirror's plan stays the host's:
    a cue is planned at ``start + offset + shift`` in host time, whatever the
    band's clock does.
    """

    timeline: fp.Timeline
    start: float = 0.0  # host clock
    shift_us: int = 0
    paused_at: float | None = None  # host clock
    phase: SessionPhase = SessionPhase.IDLE
    round: int = 0
    step_index: int = -1
    acked: set[int] = field(default_factory=set)
    skipped: set[int] = field(default_factory=set)

    def elapsed_us(self, now: float) -> int:
        """Time into the plan's timeline at host time ``now``."""
        if self.phase is SessionPhase.IDLE:
            return 0
        at = self.paused_at if self.paused_at is not None else now
        elapsed = round((at - self.start) * 1_000_000) - self.shift_us
        return max(0, min(elapsed, self.timeline.total_us))

    def planned(self, cue: fp.PlannedCue) -> float:
        """When ``cue`` should fire, in host-clock seconds."""
        return self.start + (cue.offset_us + self.shift_us) / 1_000_000


class SessionTracker:
    """One workout's mirror: ``tracker.band_event(event)`` returns the session events.

    ``speed`` is host-clock seconds per real second (a sped-up demo), so cue
    errors and the ``late_cue_ms`` check are real milliseconds; heart rate older
    than ``heart_rate_fresh_s`` is never shown as live.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        speed: float = 1.0,
        late_cue_ms: float = 50.0,
        heart_rate_fresh_s: float = 5.0,
    ) -> None:
        self.plan = plan
        self.late_cue_ms = late_cue_ms
        self._speed = speed
        self._hr_fresh_s = heart_rate_fresh_s
        self._timeline = fp.build_timeline(plan.to_wire())
        self._cues = {cue.cue_id: cue for cue in self._timeline.cues}
        self._mirror = _Mirror(self._timeline)
        self._heart_rate: HeartRate | None = None
        self._battery: int | None = None
        self._rounds_done: set[int] = set()
        self._stop_by: tuple[StopReason, StopSource] | None = None  # a stop this host asked
        self.outcome: str | None = None  # set once, when the workout ends: "done", "stopped: …"

    # -- what it says ----------------------------------------------------------------------

    @property
    def phase(self) -> SessionPhase:
        """Where the workout is."""
        return self._mirror.phase

    @property
    def ended(self) -> bool:
        """Whether the workout is over (done or stopped)."""
        return self._mirror.phase in _END_PHASES

    def snapshot(
        self,
        now: float,
        *,
        band_id: str,
        session_id: str,
        link_up: bool,
        kind: BandKind = BandKind.COMPANION,
        cue_mode: CueMode = CueMode.BAND,
    ) -> SessionSnapshot:
        """What a live view or a dashboard shows at host time ``now``."""
        mirror = self._mirror
        plan = self.plan
        elapsed_us = mirror.elapsed_us(now)
        segment = self._timeline.segment_at(elapsed_us) if not self.ended else None
        step: int = -1
        remaining_s = duration_s = 0.0
        if segment is not None and mirror.phase is not SessionPhase.IDLE:
            step = segment.step_index
            remaining_s = (segment.end_us - elapsed_us) / 1_000_000
            duration_s = (segment.end_us - segment.start_us) / 1_000_000
        current = plan.steps[step] if step >= 0 else None
        hr = self._heart_rate
        fresh = hr is not None and now - hr.t <= self._hr_fresh_s and hr.contact is not False
        return SessionSnapshot(
            band_id=band_id,
            session_id=session_id,
            plan=plan.name,
            phase=mirror.phase,
            round=mirror.round,
            rounds=plan.rounds,
            step_index=step,
            step_count=len(plan.steps),
            exercise=current.name if current else ("Rest" if segment else ""),
            tip=current.tip if current else "",
            step_remaining_s=remaining_s,
            step_duration_s=duration_s,
            next_exercise=self._next_name(segment),
            elapsed_s=elapsed_us / 1_000_000,
            total_s=self._timeline.total_us / 1_000_000,
            heart_rate=hr.bpm if fresh and hr is not None else None,
            battery=self._battery,
            link_up=link_up,
            notes=plan.notes,
            kind=kind,
            cue_mode=cue_mode,
        )

    def _next_name(self, segment: fp.Segment | None) -> str:
        if segment is None:
            return self.plan.steps[0].name if self._mirror.phase is SessionPhase.IDLE else ""
        following = [s for s in self._timeline.segments if s.start_us >= segment.end_us]
        if not following:
            return ""
        index = following[0].step_index
        return self.plan.steps[index].name if index >= 0 else "Rest"

    # -- what the host decided ---------------------------------------------------------------

    def started(self, start: float) -> list[Event]:
        """The band accepted START: the timeline runs from ``start`` (host clock)."""
        self._mirror.start = start
        self._mirror.phase = SessionPhase.RUNNING
        plan = self.plan
        return [SessionStarted(plan.name, plan.rounds, start, plan.notes)]

    def adopted(self, start: float, shift_us: int, recorded: Iterable[Event]) -> None:
        """Carry on with a workout this host recorded before: ``recorded`` is its history.

        Where the band stands now is in its CAPABILITIES, but the band replays what
        this host missed, so the mirror starts from what was recorded and the replay
        brings it up to date (every step change then appears once in the history).
        """
        mirror = self._mirror
        mirror.start = start
        mirror.phase = SessionPhase.RUNNING
        for event in recorded:
            if isinstance(event, CueFired):
                mirror.acked.add(event.cue_id)
            elif isinstance(event, RoundDone):
                self._rounds_done.add(event.round)
                if event.round == mirror.round:
                    mirror.step_index, mirror.phase = fp.REST_STEP, SessionPhase.ROUND_REST
            elif isinstance(event, StepStarted):
                mirror.round, mirror.step_index = event.round, event.step_index
                mirror.phase = SessionPhase.RUNNING
            elif isinstance(event, SessionPaused):
                mirror.phase, mirror.paused_at = SessionPhase.PAUSED, event.t
            elif isinstance(event, SessionResumed):
                mirror.paused_at = None
        mirror.shift_us = shift_us  # replayed reports bring their own

    def stopping(self, reason: StopReason) -> None:
        """This host is sending STOP for ``reason``: the band's report will name it."""
        self._stop_by = (reason, StopSource.HOST)

    def stopped_by_host(self, reason: StopReason, now: float) -> list[Event]:
        """This host ended the workout (Ctrl-C, a failed history) whatever the band said."""
        if self.ended:
            return []
        self._set_end(SessionPhase.STOPPED)
        self._end(f"stopped: {reason.value}")
        return [SessionStopped(reason, now, StopSource.HOST)]

    def abandoned(self) -> None:
        """The session ends before anything ran on the band (the history failed first)."""
        if not self.ended:
            self._set_end(SessionPhase.STOPPED)

    def link_lost(self, now: float, why: str) -> list[Event]:
        """The band stayed out of reach for good: the session ends here."""
        self._set_end(SessionPhase.STOPPED)
        self._end(f"link lost: {why}")
        return [SessionStopped(StopReason.LINK, now)]

    # -- what the band reported ---------------------------------------------------------------

    def band_event(self, event: Event) -> list[Event]:
        """The session events one band event means (often itself, sometimes none or more)."""
        match event:
            case BandStateChanged():
                return self._on_band_state(event)
            case CueFired():
                return self._on_cue(event)
            case HeartRate():
                if event.t < self._mirror.start - _BEFORE_START_S:
                    # Measured before this workout (the band replays what no host took, from
                    # its boot on): not this session's heart rate.
                    return []
                self._heart_rate = event
            case Battery():
                self._battery = event.percent
            case CueWarning(problem=CueProblem.MISSED):
                # A host-timed band reports a cue it could not deliver: accounted for.
                self._mirror.acked.add(event.cue_id)
        return [event]

    def _on_band_state(self, event: BandStateChanged) -> list[Event]:
        mirror = self._mirror
        out: list[Event] = []
        new_shift = round(event.shift_s * 1_000_000)
        if new_shift < mirror.shift_us and mirror.paused_at is None:
            self._mark_skipped(event.t, new_shift)
        previous = (mirror.phase, mirror.round, mirror.step_index)
        mirror.shift_us = new_shift
        state = event.state
        if state is fp.SessionStateCode.PAUSED:
            mirror.paused_at = event.t
            mirror.phase = SessionPhase.PAUSED
            return [SessionPaused(event.t)]
        running = state in (fp.SessionStateCode.RUNNING, fp.SessionStateCode.ROUND_REST)
        if previous[0] is SessionPhase.PAUSED and running:
            mirror.paused_at = None
            out.append(SessionResumed(event.t))
        if running:
            mirror.phase = _PHASES[state]
            if (event.round, event.step_index) != previous[1:]:
                out += self._on_step_change(previous[1], event)
        elif state is fp.SessionStateCode.DONE:
            out += self._round_done(previous[1], event.t)
            self._set_end(SessionPhase.DONE)
            out += self._missing_cues(event.t)
            out.append(SessionDone(mirror.round, event.t))
            self._end("done")
        elif state is fp.SessionStateCode.STOPPED:
            self._set_end(SessionPhase.STOPPED)
            reason, source = _STOP_REASONS.get(event.cause, (StopReason.HOST, StopSource.BAND))
            if event.cause is fp.StopCause.HOST and self._stop_by is not None:
                reason, source = self._stop_by  # the STOP this host sent: who asked for it
            out.append(SessionStopped(reason, event.t, source))
            self._end(f"stopped: {reason.value}")
        return out

    def _on_step_change(self, previous_round: int, event: BandStateChanged) -> list[Event]:
        mirror = self._mirror
        out: list[Event] = []
        if event.round != previous_round or event.step_index < 0:
            out += self._round_done(previous_round, event.t)
        mirror.round, mirror.step_index = event.round, event.step_index
        if event.step_index >= 0:
            step = self.plan.steps[event.step_index]
            out.append(
                StepStarted(
                    round=event.round,
                    step_index=event.step_index,
                    name=step.name,
                    kind=step.kind,
                    duration_s=step.duration_s,
                    tip=step.tip,
                    t=event.t,
                )
            )
        return out

    def _round_done(self, round_number: int, t: float) -> list[Event]:
        if round_number > 0 and round_number not in self._rounds_done:
            self._rounds_done.add(round_number)
            return [RoundDone(round_number, t)]
        return []

    def _mark_skipped(self, t: float, new_shift_us: int) -> None:
        mirror = self._mirror
        at_us = round((t - mirror.start) * 1_000_000)
        before = at_us - mirror.shift_us
        after = at_us - new_shift_us
        for cue in self._timeline.cues:
            if before <= cue.offset_us < after:
                mirror.skipped.add(cue.cue_id)

    def _on_cue(self, event: CueFired) -> list[Event]:
        cue = self._cues.get(event.cue_id)
        if cue is None:  # the "stopped" cue is not on the timeline: no plan to check it against
            return [event]
        if event.cue_id in self._mirror.acked:
            return []
        self._mirror.acked.add(event.cue_id)
        checked = CueFired(
            cue_id=event.cue_id,
            kind=event.kind,
            round=event.round,
            step_index=event.step_index,
            planned=self._mirror.planned(cue),
            fired=event.fired,
            speed=self._speed,  # so error_ms (and the "late" check) is in real ms
            offset_s=cue.offset_us / 1_000_000,
            timing=event.timing,
        )
        if abs(checked.error_ms) <= self.late_cue_ms:
            return [checked]
        late = CueWarning(event.cue_id, event.kind, CueProblem.LATE, checked.error_ms, event.fired)
        return [checked, late]

    def _missing_cues(self, now: float) -> list[Event]:
        mirror = self._mirror
        return [
            CueWarning(cue.cue_id, cue.kind, CueProblem.MISSING, None, now)
            for cue in self._timeline.cues
            if cue.cue_id not in mirror.acked and cue.cue_id not in mirror.skipped
        ]

    def _set_end(self, phase: SessionPhase) -> None:
        self._mirror.phase = phase
        self._mirror.paused_at = None

    def _end(self, outcome: str) -> None:
        if self.outcome is None:
            self.outcome = outcome
