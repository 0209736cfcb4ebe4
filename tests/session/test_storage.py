"""A disk that fills up mid-session: the workout is stopped and what was written is kept."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyte
import pytest
from rich.console import Console

import firmware_protocol as fp
from companion.errors import StoreError
from companion.events import HeartRate, SessionStarted, StepStarted
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
        assert virtual.motor.played[-1].cue_id == fp.STOPPED_CUE_ID
    screen = pyte.Screen(80, 24)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(out.getvalue())
    assert "Workout stopped." in "\n".join(screen.display)
