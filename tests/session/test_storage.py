"""A disk that fills up mid-session: the workout is stopped and what was written is kept."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import sqlite3
import subprocess
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyte
import pytest
from rich.console import Console

import firmware_protocol as fp
from companion.errors import StoreError
from companion.events import (
    CommandRejected,
    HeartRate,
    SessionEvent,
    SessionStarted,
    StepStarted,
)
from companion.plan import builtin_plan
from companion.session import Session
from companion.store import Store
from companion.view import LiveView

from .conftest import connected

pytestmark = pytest.mark.looptime


@contextlib.contextmanager
def small_disk(size: str = "8m") -> Iterator[Path]:
    """A real file system of ``size`` (a tmpfs), so "full" is what the kernel says."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    with tempfile.TemporaryDirectory() as folder:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", folder],
            capture_output=True,
            check=False,
        )
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
        try:
            yield Path(folder)
        finally:
            subprocess.run(["umount", "--lazy", folder], check=True)


def fill(disk: Path) -> None:
    """Take every free block of ``disk``."""
    with contextlib.suppress(OSError), (disk / "filler").open("wb", buffering=0) as filler:
        while True:
            filler.write(bytes(4096))


@pytest.mark.parametrize("commit_every_s", [0.0, 0.05], ids=["each", "grouped"])
async def test_a_disk_that_fills_up_mid_session_stops_it_as_storage_keeping_what_was_written(
    commit_every_s: float,
) -> None:
    with small_disk() as disk:
        store = Store(disk / "data" / "sessions.sqlite3", commit_every_s=commit_every_s)
        async with connected() as (virtual, band):
            session = Session(band, builtin_plan("back-5"), store=store)
            runner = asyncio.create_task(session.run())
            await band.clock.sleep(70)  # into the second exercise
            fill(disk)
            with pytest.raises(StoreError, match=r"disk holding .* is full") as failure:
                await runner
        store.close()
        assert "stopped: storage" in str(failure.value)
        assert "everything recorded before the failure is kept" in str(failure.value)
        assert "Fix: free some space" in str(failure.value)
        assert virtual.motor.played[-1].cue_id == fp.STOPPED_CUE_ID  # stopped on the wrist

        (disk / "filler").unlink()
        with Store(disk / "data" / "sessions.sqlite3", create=False) as kept:
            summary = kept.summary(session.session_id)
            events = [e.event for e in kept.events(session.session_id)]
        assert summary.outcome == "stopped: storage"
        assert isinstance(events[0], SessionStarted)
        assert [e.name for e in events if isinstance(e, StepStarted)] == ["QL lifts", "Hip roll"]
        assert sum(isinstance(e, HeartRate) for e in events) > 50
        assert not list((disk / "data").glob("*-reserve"))


async def test_a_full_disk_before_the_start_stops_the_band_at_once_and_the_panel_says_so() -> None:
    out = io.StringIO()
    terminal = Console(file=out, width=80, height=24, force_terminal=True)
    with small_disk() as disk:
        store = Store(disk / "sessions.sqlite3")
        fill(disk)
        async with connected() as (virtual, band):
            session = Session(band, builtin_plan("back-5"), store=store)
            with pytest.raises(StoreError, match="full"):
                async with LiveView(session, terminal):
                    await session.run()
        store.close()
        assert session.finished
        # The session's row is written before START, so the band never starts a workout
        # that cannot be recorded (or it is stopped at once): none is left running.
        assert virtual.protocol.state in (fp.SessionStateCode.IDLE, fp.SessionStateCode.STOPPED)
        assert all(a.cue_id == fp.STOPPED_CUE_ID for a in virtual.motor.played)
    screen = pyte.Screen(80, 24)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(out.getvalue())
    assert "Workout stopped." in "\n".join(screen.display)


async def test_a_late_subscriber_replays_every_event_from_the_store_not_from_memory(
    store: Store,
) -> None:
    plan = builtin_plan("back-5", rounds=2)
    async with connected() as (_virtual, band):
        session = Session(band, plan, store=store)
        seen_early: list[str] = []  # reprs: the events themselves would stay alive here
        follower = asyncio.create_task(_collect(session.events(), seen_early))
        runner = asyncio.create_task(session.run())
        await band.clock.sleep(300)  # a round in: ~300 heart-rate samples so far
        tracemalloc.start()
        before = _held_by_session_numbering()
        await band.clock.sleep(240)
        grown = _held_by_session_numbering() - before
        tracemalloc.stop()
        late = session.events()
        await runner
        await follower
    seen_late = [repr(event) async for event in late]
    assert len(seen_early) > 500
    assert seen_late == seen_early  # every event from the first, read back unchanged
    # Kept in memory, 240 s of heart rate and cues took ~47 KB here; recorded, none stays.
    assert grown < 240 * 250 / 4, grown


async def _collect(events: AsyncIterator[SessionEvent], into: list[str]) -> None:
    async for event in events:
        into.append(repr(event))


def _held_by_session_numbering() -> int:
    """Bytes still allocated by the lines of companion/session.py (its numbered events)."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, "*companion/session.py")]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def test_a_subscriber_after_an_event_before_the_start_replays_it(store: Store) -> None:
    async with connected() as (_virtual, band):
        session = Session(band, builtin_plan("back-5", rounds=1), store=store)
        session.reject("mqtt", "skip", "the workout has not started")  # recorded, no row yet
        late = session.events()
        runner = asyncio.create_task(session.run())
        await band.clock.sleep(20)
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    events = [event.event async for event in late]
    assert isinstance(events[0], CommandRejected)
    assert events[0].command == "skip"
    assert any(isinstance(e, SessionStarted) for e in events)


def _committed(path: Path, session_id: str) -> int:
    """How many events of ``session_id`` another connection sees (the committed ones)."""
    with contextlib.closing(sqlite3.connect(path)) as outside:
        row = outside.execute("SELECT COUNT(*) FROM events WHERE session_id = ?", (session_id,))
        return int(row.fetchone()[0])


async def test_with_group_commits_the_band_keeps_each_event_until_its_group_is_committed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = Store(path, commit_every_s=5.0)  # long groups, to see them at 1 Hz heart rate
    async with connected() as (virtual, band):
        session = Session(band, builtin_plan("back-5", rounds=1), store=store)
        runner = asyncio.create_task(session.run())
        await band.clock.sleep(10)
        marks: list[tuple[int, int]] = []  # (the band's oldest unacknowledged, committed)
        for _ in range(48):
            await band.clock.sleep(0.25)
            marks.append(
                (virtual.protocol.first_unacked_event, _committed(path, session.session_id))
            )
        # The band lets events go only at a commit, a group at a time (at 1 Hz, each would
        # be acknowledged within milliseconds otherwise): 12 s hold two or three commits.
        assert 2 <= len({unacked for unacked, _ in marks}) <= 4
        for (unacked, committed), (later_unacked, later_committed) in itertools.pairwise(marks):
            if later_unacked != unacked:  # released: the commit has happened
                assert later_committed > committed
        assert max(b - a for (a, _), (b, _) in itertools.pairwise(marks)) >= 4  # a group at once
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    store.close()
    with Store(path, create=False) as kept:
        assert kept.session(session.session_id).outcome == "stopped: host"


async def test_a_group_commit_is_read_by_the_store_itself_before_it_is_committed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = Store(path, commit_every_s=60.0)
    store.begin_session("s1", "band", builtin_plan("back-5"), datetime.now(UTC))
    told: list[StoreError | None] = []
    for number in (1, 2, 3):
        store.record(SessionEvent("band", "s1", number, datetime.now(UTC), _sample(number)))
    store.after_commit(told.append)
    store.after_commit(told.append)  # once, however often asked
    assert _committed(path, "s1") == 0  # waiting for its group
    assert told == []
    assert [e.number for e in store.events("s1")] == [1, 2, 3]  # a read commits first
    assert _committed(path, "s1") == 3
    assert told == [None]
    store.after_commit(told.append)  # nothing waits: at once
    assert told == [None, None]
    store.close()


async def test_a_failed_group_commit_is_told_to_whoever_waits_for_it(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = Store(path, commit_every_s=60.0)
    store.begin_session("s1", "band", builtin_plan("back-5"), datetime.now(UTC))
    store.record(SessionEvent("band", "s1", 1, datetime.now(UTC), _sample(1)))
    told: list[StoreError | None] = []
    store.after_commit(told.append)
    store._db.execute("PRAGMA query_only=ON")  # the next write fails, even as root
    with pytest.raises(StoreError):
        store.commit()
    assert len(told) == 1
    assert isinstance(told[0], StoreError)
    store._db.execute("PRAGMA query_only=OFF")
    store.close()


def _sample(number: int) -> HeartRate:
    return HeartRate(100 + number, float(number), (600.0,), True)
