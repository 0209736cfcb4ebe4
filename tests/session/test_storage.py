"""A disk that fills up mid-session: the workout is stopped and what was written is kept."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Iterator
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


async def test_a_disk_that_fills_up_mid_session_stops_it_as_storage_keeping_what_was_written() -> (
    None
):
    with small_disk() as disk:
        store = Store(disk / "data" / "sessions.sqlite3")
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
