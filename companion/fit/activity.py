"""Export a recorded session as a FIT activity, the file every training platform imports.

The file holds, in time order: file id, device info (companion as the
creator, the band as a BLE heart-rate sensor), a timer start event, one
record per heart-rate sample (stamped to the nearest second, FIT's
resolution) followed by an HRV message with its RR intervals, a timer
stop/start pair for each pause, **one lap per step** of the plan (and one per
rest between rounds), a final timer stop, then the session (sport training,
sub-sport strength training) and the activity.

A lap carries the step's index in the plan as its workout step index (the
rest between rounds gets the index after the last step, as in the workout
file :func:`~companion.fit.workout_fit` writes), its start time, elapsed time,
timer time (elapsed minus the pauses inside it), intensity (active for an
exercise, rest for a rest) and average / maximum heart rate. The laps cover
the session without gaps, so every heart-rate sample lies in exactly one lap.

Heart-rate samples taken while paused are kept: they are the person's data,
and every platform accepts records while the timer is stopped.
"""

from __future__ import annotations

import logging
import statistics
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .. import __version__
from ..errors import ReportError
from ..events import HeartRate
from ..report import SessionReport, Span, SpanKind, build_report
from ..store import Store
from ._writer import (
    Activity,
    ActivityMessage,
    BleDeviceType,
    DeviceInfoMessage,
    Event,
    EventMessage,
    EventType,
    FileIdMessage,
    FileType,
    HrvMessage,
    Intensity,
    LapMessage,
    LapTrigger,
    Manufacturer,
    RecordMessage,
    SessionMessage,
    SessionTrigger,
    SourceType,
    Sport,
    SubSport,
    TimerTrigger,
    build_fit,
    fill,
    fit_ms,
)

__all__ = ["FitLap", "activity_fit", "activity_laps", "export_fit"]

logger = logging.getLogger(__name__)

_RR_PER_HRV: Final = 5  # an HRV message holds up to five RR intervals
_PRODUCT_NAME: Final = "companion"
# Local message numbers, one per kind, so that interleaved kinds need no new definitions.
_LOCAL: Final = {
    "file_id": 0,
    "device_info": 1,
    "event": 2,
    "record": 3,
    "hrv": 4,
    "lap": 5,
    "session": 6,
    "activity": 7,
}
# Among messages stamped with the same second: starts, then data, then stops and laps.
_FIRST, _DATA, _HRV, _STOP, _LAP = range(5)


@dataclass(frozen=True, slots=True)
class FitLap:
    """One lap of the activity, in seconds from the start of the report."""

    start_s: float
    end_s: float
    timer_s: float  # elapsed minus the pauses inside the lap
    step_index: int | None  # the plan step (len(steps) for the rest between rounds)
    rest: bool
    name: str
    samples: tuple[HeartRate, ...]

    @property
    def elapsed_s(self) -> float:
        """How long the lap lasted, pauses included."""
        return self.end_s - self.start_s


def export_fit(store: Store, session_id: str, path: str | Path) -> Path:
    """Write one session (id or unique prefix) as a FIT activity file; returns the path written."""
    target = Path(path)
    if target.suffix.lower() != ".fit":
        raise ReportError(
            f"cannot export to {target}: unsupported file type {target.suffix or '(none)'!r}. "
            f"Use a path ending in .fit, e.g. {target.with_suffix('.fit').name}"
        )
    report = build_report(store, session_id)
    data = activity_fit(report)
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise ReportError(
            f"cannot write the export to {target}: {exc.strerror}. "
            "Check that the folder exists and is writable, or choose another path"
        ) from exc
    logger.info("exported session %s to %s (%d bytes)", report.record.id, target, len(data))
    return target


def _bounds(report: SessionReport) -> tuple[float, float]:
    """Start and end of the activity: the timeline, widened to every sample recorded."""
    times = [report.seconds(h.t) for h in report.heart_rate]
    starts = [0.0, *times[:1], *(s.start_s for s in report.steps[:1])]
    ends = [report.end_s, *times[-1:], *(s.end_s for s in report.steps[-1:])]
    return min(starts), max(ends)


def _paused_within(pauses: Sequence[Span], start: float, end: float) -> float:
    return sum(max(0.0, min(end, p.end_s) - max(start, p.start_s)) for p in pauses)


def activity_laps(report: SessionReport) -> tuple[FitLap, ...]:
    """The laps of a session: one per step and per rest between rounds, covering it all."""
    start, end = _bounds(report)
    step_count = len(report.record.step_names)
    spans = list(report.steps)
    if not spans:  # stopped before the first step: one lap for whatever was recorded
        spans = [Span(SpanKind.EXERCISE, "no step", 0, -1, start, end)]
    starts = [start, *(s.start_s for s in spans[1:])]
    ends = [*starts[1:], end]
    grouped: list[list[HeartRate]] = [[] for _ in spans]
    index = 0
    for sample in report.heart_rate:
        at = report.seconds(sample.t)
        while index + 1 < len(starts) and at >= starts[index + 1]:
            index += 1
        grouped[index].append(sample)
    laps = []
    for span, lap_start, lap_end, samples in zip(spans, starts, ends, grouped, strict=True):
        if span.kind is SpanKind.ROUND_REST:
            step: int | None = step_count
        else:
            step = span.step_index if 0 <= span.step_index < step_count else None
        laps.append(
            FitLap(
                start_s=lap_start,
                end_s=lap_end,
                timer_s=lap_end - lap_start - _paused_within(report.pauses, lap_start, lap_end),
                step_index=step,
                rest=span.kind in (SpanKind.REST, SpanKind.ROUND_REST),
                name=span.name,
                samples=tuple(samples),
            )
        )
    return tuple(laps)


def _heart(samples: Sequence[HeartRate]) -> dict[str, int]:
    """Average, maximum and minimum heart rate of samples with a reading (FIT: 1-254 bpm)."""
    bpm = [s.bpm for s in samples if 0 < s.bpm < 255]
    if not bpm:
        return {}
    return {
        "avg_heart_rate": round(statistics.fmean(bpm)),
        "max_heart_rate": max(bpm),
        "min_heart_rate": min(bpm),
    }


def activity_fit(report: SessionReport) -> bytes:
    """The FIT activity file of a session, as bytes."""
    record = report.record
    start, end = _bounds(report)

    def at(seconds: float) -> int:
        return fit_ms(report.wall_time(report.origin + seconds))

    laps = activity_laps(report)
    timer_s = end - start - _paused_within(report.pauses, start, end)
    serial = zlib.crc32(record.band_id.encode("utf-8"))
    timed: list[tuple[int, int, int, Any]] = []  # (ms, order among equals, sequence, message)

    def add(seconds: float, order: int, message: Any) -> None:
        timed.append((at(seconds), order, len(timed), message))

    def timer(seconds: float, kind: EventType) -> None:
        message = fill(
            EventMessage(local_id=_LOCAL["event"]),
            timestamp=at(seconds),
            event=Event.TIMER,
            event_type=kind,
            timer_trigger=TimerTrigger.MANUAL,
        )
        add(seconds, _FIRST if kind is EventType.START else _STOP, message)

    timer(start, EventType.START)
    for pause in report.pauses:
        timer(pause.start_s, EventType.STOP_ALL)
        timer(pause.end_s, EventType.START)
    timer(end, EventType.STOP_ALL)
    for sample in report.heart_rate:
        seconds = report.seconds(sample.t)
        point = fill(RecordMessage(local_id=_LOCAL["record"]), timestamp=at(seconds))
        if 0 < sample.bpm < 255:  # 255 is FIT's "no value"; 0 means "no reading"
            fill(point, heart_rate=sample.bpm)
        add(seconds, _DATA, point)
        rr = [ms / 1000 for ms in sample.rr_ms if 0 < ms < 65535]
        for first in range(0, len(rr), _RR_PER_HRV):
            add(seconds, _HRV, fill(HrvMessage(local_id=_LOCAL["hrv"]), time=rr[first : first + 5]))
    for number, lap in enumerate(laps):
        message = fill(
            LapMessage(local_id=_LOCAL["lap"]),
            message_index=number,
            timestamp=at(lap.end_s),
            event=Event.LAP,
            event_type=EventType.STOP,
            start_time=at(lap.start_s),
            total_elapsed_time=lap.elapsed_s,
            total_timer_time=lap.timer_s,
            intensity=Intensity.REST if lap.rest else Intensity.ACTIVE,
            lap_trigger=LapTrigger.SESSION_END if number == len(laps) - 1 else LapTrigger.TIME,
            sport=Sport.TRAINING,
            sub_sport=SubSport.STRENGTH_TRAINING,
            **_heart(lap.samples),
        )
        if lap.step_index is not None:
            fill(message, workout_step_index=lap.step_index)
        add(lap.end_s, _LAP, message)
    timed.sort(key=lambda item: item[:3])

    created = at(start)
    head = [
        fill(
            FileIdMessage(local_id=_LOCAL["file_id"]),
            type=FileType.ACTIVITY,
            manufacturer=Manufacturer.DEVELOPMENT.value,
            product=0,
            serial_number=serial,
            time_created=created,
            product_name=_PRODUCT_NAME,
        ),
        fill(
            DeviceInfoMessage(local_id=_LOCAL["device_info"]),
            timestamp=created,
            device_index=0,  # the creator of the file
            manufacturer=Manufacturer.DEVELOPMENT.value,
            product=0,
            product_name=_PRODUCT_NAME,
            software_version=_software_version(),
            source_type=SourceType.LOCAL,
        ),
        fill(
            DeviceInfoMessage(local_id=_LOCAL["device_info"]),
            timestamp=created,
            device_index=1,
            manufacturer=Manufacturer.DEVELOPMENT.value,
            product=0,
            serial_number=serial,
            product_name=record.band_id[:32],
            source_type=SourceType.BLUETOOTH_LOW_ENERGY,
            ble_device_type=BleDeviceType.HEART_RATE,
        ),
    ]
    finished = at(end)
    tail = [
        fill(
            SessionMessage(local_id=_LOCAL["session"]),
            message_index=0,
            timestamp=finished,
            event=Event.SESSION,
            event_type=EventType.STOP,
            start_time=created,
            sport=Sport.TRAINING,
            sub_sport=SubSport.STRENGTH_TRAINING,
            total_elapsed_time=end - start,
            total_timer_time=timer_s,
            first_lap_index=0,
            num_laps=len(laps),
            trigger=SessionTrigger.ACTIVITY_END,
            **_heart(report.heart_rate),
        ),
        fill(
            ActivityMessage(local_id=_LOCAL["activity"]),
            timestamp=finished,
            total_timer_time=timer_s,
            num_sessions=1,
            type=Activity.MANUAL,
            event=Event.ACTIVITY,
            event_type=EventType.STOP,
            local_timestamp=_local_seconds(report, end),
        ),
    ]
    return build_fit([*head, *(message for *_, message in timed), *tail])


def _software_version() -> float:
    major, minor, *_ = (int(part) if part.isdigit() else 0 for part in __version__.split("."))
    return major + minor / 100  # FIT: version x 100 in a uint16


def _local_seconds(report: SessionReport, seconds: float) -> int:
    """FIT ``local_timestamp``: the end in this machine's local time, as FIT seconds."""
    moment = report.wall_time(report.origin + seconds).astimezone()
    offset = moment.utcoffset()
    shift = round(offset.total_seconds()) if offset is not None else 0
    return round(moment.timestamp()) + shift - _FIT_EPOCH_UNIX


_FIT_EPOCH_UNIX: Final = 631065600  # 1989-12-31T00:00:00Z, where FIT time starts
