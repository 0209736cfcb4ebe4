"""TCX export of sessions recorded against the virtual band."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from companion.errors import StoreError
from companion.events import SessionStarted
from companion.export import TCX_NAMESPACE, export_tcx
from companion.report import ReportError
from companion.store import Store
from tests.test_report import record_session

pytestmark = pytest.mark.looptime

NS = {"tcx": TCX_NAMESPACE}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "sessions.sqlite3") as opened:
        yield opened


def parse_time(text: str | None) -> datetime:
    assert text is not None
    assert text.endswith("Z")
    return datetime.fromisoformat(text)


async def test_tcx_has_one_activity_with_one_lap_per_round(store: Store, tmp_path: Path) -> None:
    session_id = await record_session(store)

    written = export_tcx(store, session_id, tmp_path / "session.tcx")

    root = ET.parse(written).getroot()
    assert written == tmp_path / "session.tcx"
    assert root.tag == f"{{{TCX_NAMESPACE}}}TrainingCenterDatabase"
    activities = root.findall("tcx:Activities/tcx:Activity", NS)
    assert [a.get("Sport") for a in activities] == ["Other"]
    laps = activities[0].findall("tcx:Lap", NS)
    assert len(laps) == 2
    notes = [lap.findtext("tcx:Notes", namespaces=NS) for lap in laps]
    assert notes == [
        "Round 1: Plank, Glute bridge; then 5 s rest.",
        "Round 2: Plank, Glute bridge.",
    ]
    totals = [float(lap.findtext("tcx:TotalTimeSeconds", "0", NS)) for lap in laps]
    # the rest belongs to round 1, and so does a sample taken in the 0.5 s before its first
    # step (the band's start lead): the lap stretches back to cover it
    assert 24.8 <= totals[0] <= 25.5
    assert totals[1] == pytest.approx(20.0, abs=0.2)


async def test_tcx_has_one_trackpoint_per_heart_rate_sample_in_time_order(
    store: Store, tmp_path: Path
) -> None:
    session_id = await record_session(store)
    samples = store.heart_rate(session_id)
    record = store.session(session_id)

    root = ET.parse(export_tcx(store, session_id, tmp_path / "session.tcx")).getroot()

    points = root.findall(".//tcx:Trackpoint", NS)
    assert len(points) == len(samples) > 30
    times = [parse_time(p.findtext("tcx:Time", namespaces=NS)) for p in points]
    assert all(a < b for a, b in itertools.pairwise(times))
    bpm = [int(p.findtext("tcx:HeartRateBpm/tcx:Value", "0", NS)) for p in points]
    assert bpm == [s.bpm for s in samples]
    # The wall-clock start plus each sample's offset from the start of the band's timeline.
    starts = [
        e.event.start for e in store.events(session_id) if isinstance(e.event, SessionStarted)
    ]
    origin = starts[0]
    for sample, at in zip(samples, times, strict=True):
        expected = record.started_at + timedelta(seconds=sample.t - origin)
        assert abs(at - expected) <= timedelta(milliseconds=1)
    activity_id = parse_time(root.findtext(".//tcx:Activity/tcx:Id", namespaces=NS))
    assert abs(activity_id - record.started_at) <= timedelta(milliseconds=1)


async def test_tcx_lap_heart_rate_summaries_match_the_lap_samples(
    store: Store, tmp_path: Path
) -> None:
    session_id = await record_session(store)

    root = ET.parse(export_tcx(store, session_id, tmp_path / "session.tcx")).getroot()

    for lap in root.findall(".//tcx:Lap", NS):
        bpm = [int(v.text or "0") for v in lap.findall(".//tcx:HeartRateBpm/tcx:Value", NS)]
        assert int(lap.findtext("tcx:MaximumHeartRateBpm/tcx:Value", "0", NS)) == max(bpm)
        average = int(lap.findtext("tcx:AverageHeartRateBpm/tcx:Value", "0", NS))
        assert average == round(sum(bpm) / len(bpm))
        first = parse_time(lap.findtext("tcx:Track/tcx:Trackpoint/tcx:Time", namespaces=NS))
        assert parse_time(lap.get("StartTime")) <= first


async def test_tcx_of_a_session_stopped_for_pain_ends_in_a_short_lap(
    store: Store, tmp_path: Path
) -> None:
    session_id = await record_session(store, pain_after_s=14)

    root = ET.parse(export_tcx(store, session_id, tmp_path / "stopped.tcx")).getroot()

    laps = root.findall(".//tcx:Lap", NS)
    assert len(laps) == 1
    assert float(laps[0].findtext("tcx:TotalTimeSeconds", "0", NS)) == pytest.approx(13.5, abs=0.6)
    assert "ended early: stopped: pain" in (laps[0].findtext("tcx:Notes", "", NS))
    assert "stopped: pain" in root.findtext(".//tcx:Activity/tcx:Notes", "", NS)
    assert len(root.findall(".//tcx:Trackpoint", NS)) == len(store.heart_rate(session_id))


def test_export_of_an_unknown_session_says_how_to_list_sessions(
    store: Store, tmp_path: Path
) -> None:
    with pytest.raises(StoreError, match="`companion history` lists the sessions"):
        export_tcx(store, "feedbeef", tmp_path / "missing.tcx")

    assert not (tmp_path / "missing.tcx").exists()


def test_tcx_export_to_fit_is_refused_with_both_alternatives(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"unsupported file type '\.fit'.*session\.tcx.*--fit"):
        export_tcx(store, "feedbeef", tmp_path / "session.fit")
