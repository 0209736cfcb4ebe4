"""Reports of sessions recorded against the virtual band: the chart, the page, the errors."""

from __future__ import annotations

import asyncio
import base64
import re
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import firmware_protocol as fp
from companion.errors import CompanionError, StoreError
from companion.events import (
    CueFired,
    Event,
    SessionEvent,
    SessionStarted,
    SessionStopped,
    StepStarted,
    StopReason,
)
from companion.plan import Plan, Step
from companion.report import ReportError, SpanKind, build_report, write_report
from companion.session import Session
from companion.store import Store
from tests.session.conftest import connected

pytestmark = pytest.mark.looptime

# Two rounds of two short exercises with a rest between: every part of a report, in 45 s.
SHORT_PLAN = Plan(
    name="short",
    title="Short test workout",
    steps=(Step("Plank", 10.0, tip="Straight back."), Step("Glute bridge", 10.0)),
    rounds=2,
    round_rest_s=5.0,
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "sessions.sqlite3") as opened:
        yield opened


async def record_session(store: Store, plan: Plan = SHORT_PLAN, *, pain_after_s: float = 0) -> str:
    """Run ``plan`` on a virtual band, recording into ``store``; returns the session id."""
    async with connected() as (virtual, band):
        session = Session(band, plan, store=store)
        runner = asyncio.create_task(session.run())
        if pain_after_s:
            await band.clock.sleep(pain_after_s)
            virtual.press(fp.Button.PAIN)
        await runner
    return session.session_id


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_png_report_is_a_chart_of_sensible_size(store: Store, tmp_path: Path) -> None:
    session_id = await record_session(store)

    written = write_report(store, session_id, tmp_path / "session.png")

    assert written == tmp_path / "session.png"
    data = written.read_bytes()
    width, height = png_size(data)
    assert 800 <= width <= 2000
    assert 400 <= height <= 1200
    assert len(data) > 20_000  # a drawn chart, not a blank canvas
    assert data.endswith(b"IEND\xaeB`\x82")


async def test_html_report_names_each_exercise_shows_cue_stats_and_embeds_the_chart(
    store: Store, tmp_path: Path
) -> None:
    session_id = await record_session(store)
    summary = store.summary(session_id)

    page = write_report(store, session_id, str(tmp_path / "session.html")).read_text("utf-8")

    assert "Plank" in page
    assert "Glute bridge" in page
    assert "Short test workout" in page
    assert "Outcome: <strong>done</strong>" in page
    assert summary.cue_error_p50_ms is not None
    assert summary.cue_error_p99_ms is not None
    assert summary.cue_error_max_ms is not None
    assert f"<th>Timing error p50</th><td>{summary.cue_error_p50_ms:.1f} ms</td>" in page
    assert f"<th>Timing error p99</th><td>{summary.cue_error_p99_ms:.1f} ms</td>" in page
    assert f"<th>Timing error max</th><td>{summary.cue_error_max_ms:.1f} ms</td>" in page
    assert f"<th>Cues played</th><td>{summary.cues}</td>" in page
    embedded = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert embedded is not None
    assert png_size(base64.b64decode(embedded.group(1)))[0] >= 800
    assert "http" not in page.replace("http://www.w3.org", "")  # self-contained


async def test_html_round_table_has_one_row_per_round_with_heart_rate_and_cues(
    store: Store, tmp_path: Path
) -> None:
    session_id = await record_session(store)

    report = build_report(store, session_id)
    page = write_report(store, session_id, tmp_path / "session.html").read_text("utf-8")

    assert [row.round for row in report.rounds] == [1, 2]
    assert all(row.complete for row in report.rounds)
    assert all(row.duration_s == pytest.approx(20.0, abs=0.1) for row in report.rounds)
    assert all(row.hr_max is not None and row.cues > 0 for row in report.rounds)
    rests = [s for s in report.steps if s.kind is SpanKind.ROUND_REST]
    assert [(s.round, round(s.duration_s)) for s in rests] == [(1, 5)]
    assert [s.name for s in report.steps if s.kind is SpanKind.EXERCISE] == [
        "Plank",
        "Glute bridge",
    ] * 2
    first = report.rounds[0]
    assert f"<td>1</td><td>0:20</td><td>{first.hr_avg:.0f} bpm</td>" in page
    assert "<th>After round</th><th>Rest</th></tr><tr><td>1</td><td>0:05</td>" in page


async def test_report_of_a_session_stopped_for_pain_shows_the_outcome(
    store: Store, tmp_path: Path
) -> None:
    session_id = await record_session(store, pain_after_s=14)

    page = write_report(store, session_id, tmp_path / "stopped.html").read_text("utf-8")

    assert "Outcome: <strong>stopped: pain</strong>" in page
    assert "(ended early)" in page
    report = build_report(store, session_id)
    assert report.stop_s == pytest.approx(13.5, abs=0.6)  # 14 s on the clock, 0.5 s lead
    assert [row.complete for row in report.rounds] == [False]


async def test_report_accepts_a_unique_prefix_of_the_session_id(
    store: Store, tmp_path: Path
) -> None:
    session_id = await record_session(store)

    written = write_report(store, session_id[:6], tmp_path / "prefix.png")

    assert png_size(written.read_bytes())[0] > 0


def _session_without_heart_rate(store: Store) -> str:
    """A session whose band sent no heart rate (a band without the sensor, or off the wrist)."""
    now = datetime.now(UTC)
    store.begin_session("nohr0001", "band-without-hr", SHORT_PLAN, now)
    events: list[Event] = [
        SessionStarted("short", 2, 0.5),
        StepStarted(1, 0, "Plank", fp.StepKind.EXERCISE, 10.0, "", 0.5),
        CueFired(0, fp.CueKind.NEXT_EXERCISE, 1, 0, 0.5, 0.5004),
        SessionStopped(StopReason.HOST, 6.0),
    ]
    for number, event in enumerate(events, 1):
        store.record(SessionEvent("band-without-hr", "nohr0001", number, now, event))
    store.end_session("nohr0001", now, "stopped: host")
    return "nohr0001"


def test_report_of_a_session_without_heart_rate_says_so(store: Store, tmp_path: Path) -> None:
    session_id = _session_without_heart_rate(store)

    chart = write_report(store, session_id, tmp_path / "nohr.png")
    page = write_report(store, session_id, tmp_path / "nohr.html").read_text("utf-8")

    assert png_size(chart.read_bytes())[0] >= 800
    assert "No heart-rate samples were recorded in this session." in page
    assert "<th>Average heart rate</th><td>-</td>" in page


def test_unknown_session_id_says_how_to_list_sessions(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "missing.png"

    with pytest.raises(StoreError, match=r"no session matching 'feedbeef'.*`companion history`"):
        write_report(store, "feedbeef", target)

    assert not target.exists()


def test_unsupported_extension_names_the_supported_ones(store: Store, tmp_path: Path) -> None:
    session_id = _session_without_heart_rate(store)

    with pytest.raises(ReportError, match=r"unsupported file type '\.pdf'.*\.png.*\.html") as info:
        write_report(store, session_id, tmp_path / "session.pdf")

    assert isinstance(info.value, CompanionError)
    assert not (tmp_path / "session.pdf").exists()


def test_report_into_a_missing_folder_says_to_check_the_folder(
    store: Store, tmp_path: Path
) -> None:
    session_id = _session_without_heart_rate(store)

    with pytest.raises(ReportError, match="Check that the folder exists"):
        write_report(store, session_id, tmp_path / "no" / "such" / "folder" / "r.png")


def test_cue_errors_of_a_sped_up_session_are_real_milliseconds_in_the_report(
    store: Store, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    store.begin_session("fast0001", "sim0001", SHORT_PLAN, now)
    events: list[Event] = [
        SessionStarted("short", 2, 0.5),
        StepStarted(1, 0, "Plank", fp.StepKind.EXERCISE, 10.0, "", 0.5),
        # At 10x, 20 ms late on the sped-up host clock is 2 ms late on the wrist.
        CueFired(0, fp.CueKind.NEXT_EXERCISE, 1, 0, 0.5, 0.52, speed=10.0, offset_s=0.0),
        CueFired(1, fp.CueKind.NEXT_EXERCISE, 1, 1, 10.5, 10.49, speed=10.0, offset_s=10.0),
        SessionStopped(StopReason.HOST, 12.0),
    ]
    for number, event in enumerate(events, 1):
        store.record(SessionEvent("sim0001", "fast0001", number, now, event))
    store.end_session("fast0001", now, "stopped: host")

    report = build_report(store, "fast0001")
    page = write_report(store, "fast0001", tmp_path / "fast.html").read_text("utf-8")
    write_report(store, "fast0001", tmp_path / "fast.png")

    assert [c.error_ms for c in report.cues] == pytest.approx([2.0, -1.0])  # what the PNG plots
    assert report.summary.speed == 10.0
    assert "<th>Timing error max</th><td>2.0 ms</td>" in page
    # The embedded chart is base64, where "10x" can occur by chance: count the words only.
    words = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert words.count("10x") == 1
