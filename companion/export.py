"""Export a recorded session to TCX, the Garmin Training Center format that fitness sites import.

One ``Activity`` (``Sport="Other"``: TCX knows only running and biking) with
one ``Lap`` per round. A round is what the person repeats and what a watch's
lap button would mark; a lap per step would turn a 5-round workout into 25
one-minute laps that say less on an import's lap list, and the step names are
kept anyway in each lap's ``Notes``. The rest after a round belongs to that
round's lap, so the laps cover the session without gaps and every heart-rate
sample appears exactly once, as a ``Trackpoint``.

Trackpoint times are the session's wall-clock start plus the host-clock offset
of each sample (see :meth:`SessionReport.wall_time
<companion.report.SessionReport.wall_time>`), in UTC with milliseconds.

FIT is written by :mod:`companion.fit` (one lap per step, the optional ``fit``
extra); ``docs/store.md`` describes the data for any other format.
"""

from __future__ import annotations

import logging
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from .errors import ReportError
from .events import HeartRate
from .report import RoundRow, SessionReport, SpanKind, build_report
from .store import Store

__all__ = ["TCX_NAMESPACE", "export_tcx", "tcx_document"]

logger = logging.getLogger(__name__)

TCX_NAMESPACE: Final = "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"
_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
_SCHEMA_LOCATION: Final = (
    f"{TCX_NAMESPACE} http://www.garmin.com/xmlschemas/TrainingCenterDatabasev2.xsd"
)


def export_tcx(store: Store, session_id: str, path: str | Path) -> Path:
    """Write one session (id or unique prefix) as a TCX file; returns the path written."""
    target = Path(path)
    if target.suffix.lower() != ".tcx":
        raise ReportError(
            f"cannot export to {target}: unsupported file type {target.suffix or '(none)'!r}. "
            f"Use a path ending in .tcx, e.g. {target.with_suffix('.tcx').name} "
            "(for FIT, use companion.fit.export_fit or `companion report SESSION --fit`)"
        )
    report = build_report(store, session_id)
    tree = ET.ElementTree(tcx_document(report))
    ET.indent(tree)
    try:
        with target.open("wb") as file:
            tree.write(file, encoding="UTF-8", xml_declaration=True)
    except OSError as exc:
        raise ReportError(
            f"cannot write the export to {target}: {exc.strerror}. "
            "Check that the folder exists and is writable, or choose another path"
        ) from exc
    logger.info("exported session %s to %s", report.record.id, target)
    return target


def tcx_document(report: SessionReport) -> ET.Element:
    """The TCX document of a session, as an ElementTree root element."""
    # Namespaces are written as plain attributes, not registered with ElementTree,
    # because ET.register_namespace changes a registry shared by the whole process.
    root = ET.Element(
        "TrainingCenterDatabase",
        {"xmlns": TCX_NAMESPACE, "xmlns:xsi": _XSI, "xsi:schemaLocation": _SCHEMA_LOCATION},
    )
    activity = ET.SubElement(ET.SubElement(root, "Activities"), "Activity", Sport="Other")
    _text(activity, "Id", _iso(report.wall_time(report.origin)))
    for bounds, samples, notes in _laps(report):
        start, end = bounds
        lap = ET.SubElement(
            activity, "Lap", StartTime=_iso(report.wall_time(report.origin + start))
        )
        _text(lap, "TotalTimeSeconds", f"{max(0.0, end - start):.1f}")
        _text(lap, "DistanceMeters", "0")
        _text(lap, "Calories", "0")
        bpm = [s.bpm for s in samples if 0 < s.bpm <= 255]
        if bpm:
            _value(lap, "AverageHeartRateBpm", round(statistics.fmean(bpm)))
            _value(lap, "MaximumHeartRateBpm", max(bpm))
        _text(lap, "Intensity", "Active")
        _text(lap, "TriggerMethod", "Time")
        # A Track must hold at least one Trackpoint, so a lap without samples has none.
        track = ET.SubElement(lap, "Track") if samples else None
        for sample in samples:
            assert track is not None
            point = ET.SubElement(track, "Trackpoint")
            _text(point, "Time", _iso(report.wall_time(sample.t)))
            if 0 < sample.bpm <= 255:  # TCX: an unsigned byte; 0 means "no reading"
                _value(point, "HeartRateBpm", sample.bpm)
        _text(lap, "Notes", notes)
    summary = report.summary
    _text(
        activity,
        "Notes",
        f"{report.record.plan_title} ({report.record.plan_name}): {summary.outcome}, "
        f"{summary.rounds_done} of {report.record.rounds_planned} rounds. "
        f"Recorded by companion, session {report.record.id}.",
    )
    return root


def _laps(
    report: SessionReport,
) -> list[tuple[tuple[float, float], list[HeartRate], str]]:
    """(start, end) in report seconds, the samples and the notes of each lap."""
    rounds: Sequence[RoundRow] = report.rounds
    if not rounds:  # stopped before the first step: one lap for whatever was recorded
        return [((0.0, report.end_s), list(report.heart_rate), "No round started.")]
    starts = [row.start_s for row in rounds]
    ends = [*starts[1:], max(report.end_s, rounds[-1].end_s)]
    samples: list[list[HeartRate]] = [[] for _ in rounds]
    index = 0
    for sample in report.heart_rate:
        at = report.seconds(sample.t)
        while index + 1 < len(starts) and at >= starts[index + 1]:
            index += 1
        samples[index].append(sample)  # before the first step: lap 1; after the end: last lap
    # The first and the last lap stretch to cover the samples they took in: an importer
    # may drop a trackpoint that lies outside its lap.
    if samples[0]:
        starts[0] = min(starts[0], report.seconds(samples[0][0].t))
    if samples[-1]:
        ends[-1] = max(ends[-1], report.seconds(samples[-1][-1].t))
    laps = []
    for row, start, end, points in zip(rounds, starts, ends, samples, strict=True):
        in_round = [s for s in report.steps if s.round == row.round]
        names = [s.name for s in in_round if s.kind is not SpanKind.ROUND_REST]
        rest = [s for s in in_round if s.kind is SpanKind.ROUND_REST]
        note = f"Round {row.round}: {', '.join(names) or 'no step'}"
        if rest:
            note += f"; then {sum(s.duration_s for s in rest):.0f} s rest"
        if not row.complete:
            note += f" (ended early: {report.summary.outcome})"
        laps.append(((start, end), points, note + "."))
    return laps


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def _value(parent: ET.Element, tag: str, bpm: int) -> None:
    _text(ET.SubElement(parent, tag), "Value", str(bpm))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
