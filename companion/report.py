"""Reports of one recorded session: a PNG chart, or an HTML page with the chart and tables.

The report is built in two steps so that each can be checked on its own:
:func:`build_report` reads the store and lays the session out as data (steps,
rests, pauses, cues, heart rate, one row per round), and the renderers turn
that model into a chart or a page. matplotlib is imported only when a chart is
drawn, so ``import companion`` stays fast, and it draws on an Agg canvas of
its own (never ``pyplot``), so no global backend or figure registry is touched.
matplotlib comes with the optional ``report`` extra; without it, drawing the
chart raises a :class:`~companion.extras.MissingExtraError` that names it.

Times in the model are seconds from the start of the band's timeline (the
``start`` of :class:`~companion.events.SessionStarted`), on the host clock.
"""

from __future__ import annotations

import base64
import enum
import html
import io
import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

import firmware_protocol as fp

from .errors import ReportError
from .events import (
    CueFired,
    Event,
    HeartRate,
    RoundDone,
    SessionDone,
    SessionPaused,
    SessionResumed,
    SessionStarted,
    SessionStopped,
    StepStarted,
)
from .extras import MissingExtraError
from .store import SessionRecord, SessionSummary, Store

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "CueMark",
    "ReportError",
    "RoundRow",
    "SessionReport",
    "Span",
    "SpanKind",
    "build_report",
    "render_html",
    "render_png",
    "write_report",
]

logger = logging.getLogger(__name__)

REPORT_SUFFIXES: Final = (".png", ".html")
# One colour per step of the plan (the same exercise has the same colour in every round).
_STEP_COLOURS: Final = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#edc948",
    "#76b7b2",
    "#ff9da7",
    "#9c755f",
    "#e15759",
    "#bab0ac",
)
_CUE_MARKERS: Final = {
    fp.CueKind.NEXT_EXERCISE: ("v", "next exercise"),
    fp.CueKind.SWITCH_SIDE: ("D", "switch side"),
    fp.CueKind.COUNTDOWN: (".", "countdown"),
    fp.CueKind.ROUND_DONE: ("s", "round done"),
    fp.CueKind.WORKOUT_DONE: ("*", "workout done"),
}


class SpanKind(enum.StrEnum):
    """What a stretch of a report is: the report's own layout, not a protocol step kind."""

    EXERCISE = "exercise"  # a step of the plan that is not a rest (countdown steps included)
    REST = "rest"  # a rest step of the plan
    ROUND_REST = "round_rest"  # the rest between two rounds (not a step of the plan)
    PAUSED = "paused"  # the timeline was paused


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of the session: a step (``exercise``/``rest``), a ``round_rest`` or a pause."""

    kind: SpanKind
    name: str
    round: int
    step_index: int  # -1 for the rest between rounds and for pauses
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """How long the stretch lasted, pauses included."""
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class CueMark:
    """A cue the band played; ``error_ms`` is None for the "stopped" cue (it has no plan)."""

    at_s: float
    kind: fp.CueKind
    round: int
    error_ms: float | None


@dataclass(frozen=True, slots=True)
class RoundRow:
    """One row of the per-round table: a round from its first step to its end."""

    round: int
    start_s: float
    end_s: float
    complete: bool  # False when the session ended inside this round
    hr_avg: float | None
    hr_max: int | None
    cues: int
    worst_cue_error_ms: float | None  # signed: the cue furthest from its plan

    @property
    def duration_s(self) -> float:
        """How long the round took, pauses included, the rest after it excluded."""
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class SessionReport:
    """Everything a report shows about one session, as plain data."""

    record: SessionRecord
    summary: SessionSummary
    origin: float  # host-clock seconds of the timeline start: 0 s in this report
    end_s: float
    steps: tuple[Span, ...]  # steps and rests between rounds, in order
    pauses: tuple[Span, ...]
    cues: tuple[CueMark, ...]
    heart_rate: tuple[HeartRate, ...]  # ``t`` on the host clock, as recorded
    rounds: tuple[RoundRow, ...]
    stop_s: float | None  # when the session was stopped early, if it was

    def seconds(self, t: float) -> float:
        """Host-clock seconds as seconds from the start of this report."""
        return t - self.origin

    def wall_time(self, t: float) -> datetime:
        """Host-clock seconds as UTC wall-clock time.

        The store keeps the wall-clock time the session started and host-clock
        offsets for everything else, so this is exact relative to the start and
        off, in absolute terms, by no more than the band's start lead (half a second).
        """
        started = self.record.started_at
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        return started.astimezone(UTC) + timedelta(seconds=t - self.origin)


def _event_time(event: Event) -> float | None:
    if isinstance(event, CueFired):
        return event.fired
    t = getattr(event, "t", None)
    return t if isinstance(t, float | int) else None


def build_report(store: Store, session_id: str) -> SessionReport:
    """Lay out one recorded session (id or unique prefix) as data for a chart, page or export."""
    record = store.session(session_id)
    summary = store.summary(record.id)
    events = [e.event for e in store.events(record.id)]
    heart = tuple(e for e in events if isinstance(e, HeartRate))
    times = [t for t in map(_event_time, events) if t is not None]
    started = next((e.start for e in events if isinstance(e, SessionStarted)), None)
    origin = started if started is not None else (min(times) if times else 0.0)
    end = next(
        (e.t for e in reversed(events) if isinstance(e, SessionDone | SessionStopped)),
        max(times, default=origin),
    )

    steps: list[Span] = []
    pauses: list[Span] = []
    open_span: Span | None = None
    paused_at: float | None = None

    def close(at: float) -> None:
        nonlocal open_span
        if open_span is not None and at > open_span.start_s:
            steps.append(_replace_end(open_span, at))
        open_span = None

    for event in events:
        if isinstance(event, StepStarted):
            close(event.t - origin)
            kind = SpanKind.REST if event.kind is fp.StepKind.REST else SpanKind.EXERCISE
            open_span = Span(
                kind, event.name, event.round, event.step_index, event.t - origin, event.t - origin
            )
        elif isinstance(event, RoundDone):
            close(event.t - origin)
            if event.round < record.rounds_planned:
                open_span = Span(
                    SpanKind.ROUND_REST, "rest", event.round, fp.REST_STEP, event.t - origin, 0.0
                )
        elif isinstance(event, SessionPaused):
            paused_at = event.t
        elif isinstance(event, SessionResumed) and paused_at is not None:
            pauses.append(
                Span(SpanKind.PAUSED, "paused", 0, -1, paused_at - origin, event.t - origin)
            )
            paused_at = None
        elif isinstance(event, SessionDone | SessionStopped):
            close(event.t - origin)
    close(end - origin)
    if paused_at is not None and end > paused_at:
        pauses.append(Span(SpanKind.PAUSED, "paused", 0, -1, paused_at - origin, end - origin))

    fired = [e for e in events if isinstance(e, CueFired)]
    cues = tuple(
        CueMark(
            at_s=c.fired - origin,
            kind=c.kind,
            round=c.round,
            error_ms=None if c.cue_id == fp.STOPPED_CUE_ID else c.error_ms,
        )
        for c in fired
    )
    stopped = next((e.t for e in events if isinstance(e, SessionStopped)), None)
    return SessionReport(
        record=record,
        summary=summary,
        origin=origin,
        end_s=end - origin,
        steps=tuple(steps),
        pauses=tuple(pauses),
        cues=cues,
        heart_rate=heart,
        rounds=_rounds(events, heart, cues, origin, end),
        stop_s=None if stopped is None else stopped - origin,
    )


def _replace_end(span: Span, end_s: float) -> Span:
    return Span(span.kind, span.name, span.round, span.step_index, span.start_s, end_s)


def _rounds(
    events: Sequence[Event],
    heart: Sequence[HeartRate],
    cues: Sequence[CueMark],
    origin: float,
    end: float,
) -> tuple[RoundRow, ...]:
    starts: dict[int, float] = {}
    for event in events:
        if isinstance(event, StepStarted):
            starts.setdefault(event.round, event.t)
    done = {e.round: e.t for e in events if isinstance(e, RoundDone)}
    rows = []
    for number, start in sorted(starts.items()):
        stop = done.get(number, end)
        bpm = [h.bpm for h in heart if start <= h.t < stop]
        errors = [c.error_ms for c in cues if c.round == number and c.error_ms is not None]
        rows.append(
            RoundRow(
                round=number,
                start_s=start - origin,
                end_s=stop - origin,
                complete=number in done,
                hr_avg=statistics.fmean(bpm) if bpm else None,
                hr_max=max(bpm) if bpm else None,
                cues=len(errors),
                worst_cue_error_ms=max(errors, key=abs) if errors else None,
            )
        )
    return tuple(rows)


# -- rendering ------------------------------------------------------------------------------


def write_report(store: Store, session_id: str, path: str | Path) -> Path:
    """Write a PNG chart or a self-contained HTML report of one session; returns the path.

    The type follows the extension (``.png`` or ``.html``). ``session_id`` is an
    id or a unique prefix of one, as ``companion history`` shows them.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ReportError(
            f"cannot write a report to {target}: unsupported file type {suffix or '(none)'!r}. "
            f"Use a path ending in .png (the chart) or .html (chart and tables), "
            f"e.g. {target.with_suffix('.html').name}"
        )
    report = build_report(store, session_id)
    image = render_png(report)
    data = image if suffix == ".png" else render_html(report, image).encode("utf-8")
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise ReportError(
            f"cannot write the report to {target}: {exc.strerror}. "
            "Check that the folder exists and is writable, or choose another path"
        ) from exc
    logger.info("wrote the report of session %s to %s", report.record.id, target)
    return target


def render_png(report: SessionReport, *, dpi: int = 100) -> bytes:
    """The session chart as PNG bytes: heart rate over the shaded steps, and cue timing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingExtraError("the report's chart", "report", missing="matplotlib") from exc

    figure = Figure(figsize=(11, 6), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    heart_ax, cue_ax = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (4, 1.4)})
    _draw_heart_rate(heart_ax, report)
    _draw_cue_timing(cue_ax, report)
    record = report.record
    figure.suptitle(
        f"{record.plan_title} - {_when(record.started_at)} - {report.summary.outcome}",
        fontsize=12,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _draw_heart_rate(ax: Axes, report: SessionReport) -> None:
    minutes = [report.seconds(h.t) / 60 for h in report.heart_rate]
    bpm = [h.bpm for h in report.heart_rate]
    if bpm:
        low, high = min(bpm), max(bpm)
        spread = max(high - low, 20)
        # Room under the curve for the step names, which are written upwards from the bottom.
        ax.set_ylim(low - 0.75 * spread, high + 0.15 * spread)
        ax.plot(minutes, bpm, color="#c0392b", linewidth=1.4, label="heart rate", zorder=3)
    else:
        ax.set_ylim(40, 200)
        ax.text(
            0.5,
            0.6,
            "no heart-rate samples were recorded in this session",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=13,
            color="#555555",
        )
    first, last = min([0.0, *minutes]), max([report.end_s / 60, *minutes, 0.1])
    margin = (last - first) * 0.01  # so that a stop at the very end stays visible
    ax.set_xlim(first - margin, last + margin)
    blended = ax.get_xaxis_transform()
    for span in report.steps:
        start, end = span.start_s / 60, span.end_s / 60
        if span.kind is SpanKind.ROUND_REST:
            ax.axvspan(start, end, facecolor="#dddddd", hatch="//", edgecolor="#bbbbbb", zorder=1)
        else:
            colour = _STEP_COLOURS[span.step_index % len(_STEP_COLOURS)]
            alpha = 0.12 if span.kind is SpanKind.REST else 0.28
            ax.axvspan(start, end, facecolor=colour, alpha=alpha, linewidth=0, zorder=1)
        ax.text(
            (start + end) / 2,
            0.02,
            span.name if span.kind is not SpanKind.ROUND_REST else f"rest after round {span.round}",
            transform=blended,
            rotation=90,
            ha="center",
            va="bottom",
            fontsize=8,
            clip_on=True,
            zorder=4,
            bbox={"facecolor": "white", "alpha": 0.6, "linewidth": 0, "pad": 1.5},
        )
    for row in report.rounds[1:]:  # where each round begins, also when no rest separates them
        ax.axvline(row.start_s / 60, color="#555555", linewidth=0.8, linestyle=":", zorder=2)
        ax.text(
            row.start_s / 60,
            0.33,  # between the step names and the lowest the curve goes (see the y limits)
            f"round {row.round}",
            transform=blended,
            ha="center",
            va="center",
            fontsize=8,
            color="#333333",
            zorder=4,
            bbox={"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 1.5},
        )
    for index, pause in enumerate(report.pauses):
        ax.axvspan(
            pause.start_s / 60,
            pause.end_s / 60,
            facecolor="none",
            hatch="xx",
            edgecolor="#888888",
            linewidth=0,
            zorder=2,
            label="paused" if index == 0 else None,
        )
    for kind, (marker, label) in _CUE_MARKERS.items():
        at = [c.at_s / 60 for c in report.cues if c.kind is kind]
        if at:
            ax.plot(
                at,
                [0.97] * len(at),
                linestyle="none",
                marker=marker,
                markersize=5,
                color="#333333",
                transform=blended,
                label=f"cue: {label}",
                zorder=5,
            )
    if report.stop_s is not None:
        ax.axvline(
            report.stop_s / 60,
            color="#c0392b",
            linestyle="--",
            linewidth=1.5,
            label=report.summary.outcome,
            zorder=5,
        )
    ax.set_ylabel("heart rate (bpm)")
    ax.grid(axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        # Above the chart, so that it hides neither the curve nor the cue markers.
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncols=7, frameon=False)


def _draw_cue_timing(ax: Axes, report: SessionReport) -> None:
    timed = [(c.at_s / 60, c.error_ms) for c in report.cues if c.error_ms is not None]
    ax.axhline(0, color="#888888", linewidth=0.8)
    if timed:
        ax.plot(
            [at for at, _ in timed],
            [error for _, error in timed],
            linestyle="none",
            marker="o",
            markersize=3,
            color="#333333",
        )
        limit = max(1.0, 1.3 * max(abs(error) for _, error in timed))
        ax.set_ylim(-limit, limit)
    else:
        ax.text(0.5, 0.5, "no cues were played", transform=ax.transAxes, ha="center")
    speed = report.summary.speed
    ax.set_ylabel("cue error (real ms)" if speed != 1 else "cue error (ms)")
    where = "minutes from the start of the workout"
    ax.set_xlabel(f"{where} (run at {speed:g}x)" if speed != 1 else where)
    ax.grid(axis="y", alpha=0.3)


def render_html(report: SessionReport, png: bytes) -> str:
    """A self-contained HTML page: the chart (embedded PNG) and the session's tables."""
    record, summary = report.record, report.summary
    title = f"{record.plan_title}: {_when(record.started_at)}"
    image = base64.b64encode(png).decode("ascii")
    overview = [
        ("Outcome", summary.outcome),
        ("Plan", f"{record.plan_title} ({record.plan_name})"),
        ("Started", _when(record.started_at)),
        ("Duration", _duration(summary.duration_s)),
        ("Rounds done", f"{summary.rounds_done} of {record.rounds_planned}"),
        ("Average heart rate", _bpm(summary.hr_avg)),
        ("Maximum heart rate", _bpm(summary.hr_max)),
        ("Band", record.band_id),
        ("Session id", record.id),
    ]
    cue_stats = [
        ("Cues played", str(summary.cues)),
        ("Cue warnings (late or missing)", str(summary.cue_warnings)),
        ("Timing error p50", _ms(summary.cue_error_p50_ms)),
        ("Timing error p99", _ms(summary.cue_error_p99_ms)),
        ("Timing error max", _ms(summary.cue_error_max_ms)),
    ]
    if summary.speed != 1:  # said once: every cue error on the page is real time already
        cue_stats.append(("Speed", f"{summary.speed:g}x (a demo); cue errors are real ms"))
    round_rows = [
        (
            str(row.round),
            _duration(row.duration_s) + ("" if row.complete else " (ended early)"),
            _bpm(row.hr_avg),
            _bpm(row.hr_max),
            str(row.cues),
            _ms(row.worst_cue_error_ms, signed=True),
        )
        for row in report.rounds
    ]
    # The five zones of SessionSummary.zone_seconds, in percent of the default maximum (190 bpm).
    zones = [
        (f"{low}-{high} %" if high <= 100 else f"{low} %+", _duration(seconds))
        for (low, high), seconds in zip(
            ((50, 60), (60, 70), (70, 80), (80, 90), (90, 1000)), summary.zone_seconds, strict=False
        )
    ]
    rests = [s for s in report.steps if s.kind is SpanKind.ROUND_REST]
    rest_rows = [(str(s.round), _duration(s.duration_s)) for s in rests]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="outcome outcome-{_e(_outcome_class(summary.outcome))}">'
        f"Outcome: <strong>{_e(summary.outcome)}</strong></p>",
        "" if report.heart_rate else "<p>No heart-rate samples were recorded in this session.</p>",
        f'<img alt="Heart rate over the workout, with each step shaded and named, '
        f'and the timing of every cue" src="data:image/png;base64,{image}">',
        "<h2>Session</h2>",
        _table(("", ""), overview, header=False),
        "<h2>Cue timing</h2>",
        _table(("", ""), cue_stats, header=False),
        "<h2>Rounds</h2>",
        _table(("Round", "Duration", "Avg HR", "Max HR", "Cues", "Worst cue error"), round_rows)
        if round_rows
        else "<p>No round started.</p>",
    ]
    if rest_rows:
        parts += ["<h2>Rest between rounds</h2>", _table(("After round", "Rest"), rest_rows)]
    parts += [
        "<h2>Heart-rate zones</h2>",
        "<p>Time in each zone, as a share of a maximum heart rate of 190 bpm.</p>",
        _table(("Zone", "Time"), zones),
    ]
    if record.step_names:
        steps = "".join(f"<li>{_e(name)}</li>" for name in record.step_names)
        parts += ["<h2>Steps of the plan</h2>", f"<ol>{steps}</ol>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


_CSS: Final = (
    "body{font-family:system-ui,sans-serif;max-width:1120px;margin:2em auto;padding:0 1em;"
    "color:#222}img{max-width:100%;height:auto}table{border-collapse:collapse;margin:.5em 0}"
    "th,td{border:1px solid #ccc;padding:.3em .7em;text-align:left}th{background:#f3f3f3}"
    ".outcome-done strong{color:#2e7d32}.outcome-stopped strong,.outcome-link strong"
    "{color:#c0392b}"
)


def _table(headings: Sequence[str], rows: Sequence[Sequence[str]], *, header: bool = True) -> str:
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in headings) + "</tr>" if header else ""
    body = "".join(
        "<tr>"
        + "".join(
            (f"<th>{_e(cell)}</th>" if index == 0 and not header else f"<td>{_e(cell)}</td>")
            for index, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table>{head}{body}</table>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _outcome_class(outcome: str) -> str:
    return outcome.split(":", 1)[0].split()[0] if outcome.strip() else "unfinished"


def _when(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


def _bpm(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} bpm"


def _ms(value: float | None, *, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:+.1f} ms" if signed else f"{value:.1f} ms"
