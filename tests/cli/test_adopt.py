"""A workout somebody follows: the host killed with real signals, the band in its own process.

The band runs in ``companion sim`` (another process, so it survives the host);
the host is ``companion run`` in a third one, killed with SIGKILL or SIGTERM as
``kill``, ``timeout`` or ``systemctl stop`` would. Clocks run 10x on both
sides. A host needs a few real seconds to start (more on a loaded machine), so
the step in which a host is killed lasts 150 workout seconds (15 real ones)
wherever the host must come back before the workout ends; elsewhere a short
plan keeps the test quick.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import firmware_protocol as fp
from companion.events import (
    CueFired,
    CueProblem,
    CueWarning,
    SessionDone,
    SessionStopped,
    StepStarted,
    StopReason,
    StopSource,
)
from companion.plan import resolve_plan
from companion.store import Store
from tests.lines import OutputLines, band_server
from tests.mqtt.conftest import Mosquitto, mosquitto  # noqa: F401  (the fixture)

SPEED = "10"
PLAN_TOML = """
name = "{name}"
countdown = 1
[[steps]]
name = "Warm"
duration = 2
[[steps]]
name = "Hold"
duration = {hold}
[[steps]]
name = "Cool"
duration = 2
"""
_LINE_TIMEOUT_S = 30.0
_FINISH_TIMEOUT_S = 60.0


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    """Step 2 is long: a host killed in it is back before it ends."""
    path = tmp_path / "long.toml"
    path.write_text(PLAN_TOML.format(name="long", hold=150))
    return path


@pytest.fixture
def short(tmp_path: Path) -> Path:
    """24 workout seconds: 2.4 real ones."""
    path = tmp_path / "short.toml"
    path.write_text(PLAN_TOML.format(name="short", hold=20))
    return path


@pytest.fixture
def band() -> Iterator[str]:
    """``companion sim --speed 10`` in its own process; its sim:// URL."""
    with band_server("--speed", SPEED) as url:
        yield url


def _companion(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "companion", *(str(a) for a in args)]


@contextlib.contextmanager
def _host(band: str, db: Path, plan: Path, *extra: str) -> Iterator[OutputLines]:
    command = _companion("run", plan, "--band", band, "--speed", SPEED, "--no-mqtt", "--db", db)
    with subprocess.Popen(
        [*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as host:
        try:
            yield OutputLines(host)
        finally:
            if host.poll() is None:
                host.kill()


def _kill_mid_session(band: str, db: Path, plan: Path) -> None:
    """A host that starts the plan and is killed with SIGKILL during its second step."""
    with _host(band, db, plan) as host:
        host.until("round 1 step 2: Hold", _LINE_TIMEOUT_S)
        host.process.send_signal(signal.SIGKILL)
        host.process.wait(timeout=10)


def _cue_ids(plan: Path) -> list[int]:
    return [c.cue_id for c in fp.build_timeline(resolve_plan(str(plan)).to_wire()).cues]


def _run(*args: str | Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _companion(*args), capture_output=True, text=True, timeout=timeout, check=False
    )


def test_a_host_killed_mid_session_adopts_its_workout_again_and_records_every_event_once(
    band: str, plan: Path, tmp_path: Path
) -> None:
    db = tmp_path / "host.sqlite3"
    _kill_mid_session(band, db, plan)
    with _host(band, db, plan) as host:
        output = host.rest(_FINISH_TIMEOUT_S)
    assert host.process.returncode == 0, output
    assert "adopted the workout already running on the band" in output
    assert "workout done: 1 round(s)" in output

    with Store(db) as store:
        (record,) = store.sessions()  # the same session, not a second one
        assert record.outcome == "done"
        recorded = store.events(record.id)
    numbers = [e.number for e in recorded]
    assert numbers == list(range(1, len(numbers) + 1))
    events = [e.event for e in recorded]
    cues = [e.cue_id for e in events if isinstance(e, CueFired)]
    assert cues == _cue_ids(plan)  # every cue once, in order, none lost while the host was dead
    steps = [(e.round, e.step_index) for e in events if isinstance(e, StepStarted)]
    assert steps == [(1, 0), (1, 1), (1, 2)]
    assert sum(isinstance(e, SessionDone) for e in events) == 1
    assert not [e for e in events if isinstance(e, CueWarning) and e.problem is CueProblem.MISSING]


def test_sigterm_stops_the_workout_on_the_band_and_records_who_stopped_it(
    band: str, plan: Path, tmp_path: Path
) -> None:
    db = tmp_path / "host.sqlite3"
    with _host(band, db, plan) as host:
        host.until("round 1 step 1: Warm", _LINE_TIMEOUT_S)
        host.process.send_signal(signal.SIGTERM)
        output = host.rest(_FINISH_TIMEOUT_S)
    assert host.process.returncode == 128 + signal.SIGTERM, output
    assert "stopped by SIGTERM" in output
    assert "stopped: user" in output  # the summary
    with Store(db) as store:
        (record,) = store.sessions()
        assert record.outcome == "stopped: user"
        stops = [e.event for e in store.events(record.id) if isinstance(e.event, SessionStopped)]
    assert [(s.reason, s.source) for s in stops] == [(StopReason.USER, StopSource.HOST)]
    idle = _run("stop", "--band", band, "--db", db)
    assert idle.returncode == 0, idle.stdout + idle.stderr
    assert "no workout is running" in idle.stdout


def test_a_foreign_workout_is_refused_with_the_choices_then_taken_over(
    band: str, plan: Path, short: Path, tmp_path: Path
) -> None:
    _kill_mid_session(band, tmp_path / "other-host.sqlite3", plan)
    db = tmp_path / "host.sqlite3"
    with _host(band, db, short) as host:
        refused = host.rest(_FINISH_TIMEOUT_S)
    assert host.process.returncode == 1, refused
    words = " ".join(refused.split())
    assert "a workout this host did not start" in words
    assert "companion run --take-over" in words
    assert "companion stop --band" in words

    with _host(band, db, short, "--take-over") as host:
        output = host.rest(_FINISH_TIMEOUT_S)
    assert host.process.returncode == 0, output
    assert "workout done: 1 round(s)" in output
    with Store(db) as store:
        (record,) = store.sessions()
        events = [e.event for e in store.events(record.id)]
    # Nothing of the workout it took over: its own cues from the first, once each.
    assert [e.cue_id for e in events if isinstance(e, CueFired)] == _cue_ids(short)


def test_companion_stop_ends_a_workout_nobody_follows_and_closes_its_session(
    band: str, plan: Path, tmp_path: Path
) -> None:
    db = tmp_path / "host.sqlite3"
    _kill_mid_session(band, db, plan)
    stopped = _run("stop", "--band", band, "--db", db)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert re.search(r"stopped band workout [0-9a-f]{8} \(session \w+\)", stopped.stdout)
    with Store(db) as store:
        (record,) = store.sessions()
        assert record.outcome == "stopped: user"
    again = _run("stop", "--band", band, "--db", db)
    assert "no workout is running" in again.stdout


def test_events_of_a_workout_that_ended_while_no_host_followed_never_enter_a_new_session(
    band: str, short: Path, tmp_path: Path
) -> None:
    db = tmp_path / "host.sqlite3"
    _kill_mid_session(band, db, short)
    time.sleep(3.0)  # 24 workout seconds at 10x: the orphaned workout ends on the band
    # The band still holds that workout's unacknowledged events and replays them to the next
    # host, which must not count them.
    with _host(band, db, short) as host:
        output = host.rest(_FINISH_TIMEOUT_S)
    assert host.process.returncode == 0, output
    assert "adopted" not in output
    assert "missing" not in output
    with Store(db) as store:
        first, second = sorted(store.sessions(), key=lambda r: r.started_at)
        assert first.outcome == "done (not followed)"
        assert second.outcome == "done"
        events = [e.event for e in store.events(second.id)]
    cues = [e for e in events if isinstance(e, CueFired)]
    assert [e.cue_id for e in cues] == _cue_ids(short)
    assert all(abs(e.error_ms) < 1_000 for e in cues)  # none planned minutes in the past
    steps = [(e.round, e.step_index) for e in events if isinstance(e, StepStarted)]
    assert steps == [(1, 0), (1, 1), (1, 2)]


CLASS_PLAN_TOML = """
name = "class-kill"
countdown = 1
[[steps]]
name = "Warm"
duration = 3
[[steps]]
name = "Hold"
duration = 24
[[steps]]
name = "Cool"
duration = 3
"""


@pytest.mark.parametrize("broker", [False, True], ids=["alone", "with-a-broker"])
def test_a_class_host_killed_mid_class_is_resumed_by_the_next_run_with_every_cue_once(
    tmp_path: Path, request: pytest.FixtureRequest, broker: bool
) -> None:
    """``companion class`` on two bands of a ``companion sim`` process, killed with SIGKILL
    in the class's second step, then run again: it resumes the class the bands kept
    running (real time: a class command has no --speed for another process's bands).
    With a broker (a dashboard's), the resumed class's start is what it publishes."""
    plan = tmp_path / "class.toml"
    plan.write_text(CLASS_PLAN_TOML)
    db = tmp_path / "host.sqlite3"
    extra: list[str] = []
    if broker:
        mosquitto: Mosquitto = request.getfixturevalue("mosquitto")
        extra = ["--broker", f"mqtt://127.0.0.1:{mosquitto.port}"]
    with band_server("--bands", "2") as url:
        command = _companion(
            "class", plan, "--band", f"{url}/Companion1", "--band", f"{url}/Companion2",
            "--links", "1", "--db", db, *extra,
        )  # fmt: skip
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as first:
            try:
                OutputLines(first).until("round 1: Hold", _LINE_TIMEOUT_S)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
            finally:
                if first.poll() is None:
                    first.kill()
        with Store(db) as store:
            rows = {r.band_id: r.id for r in store.sessions()}
            assert [r.outcome for r in store.sessions()] == [None, None]  # nobody saw them end
        again = subprocess.run(
            command, capture_output=True, text=True, timeout=_FINISH_TIMEOUT_S, check=False
        )
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert "resumed the class the bands still run" in output
    assert "start in" not in output  # no band was started again
    with Store(db) as store:
        records = store.sessions()
        assert {r.band_id: r.id for r in records} == rows  # the same rows went on
        assert [r.outcome for r in records] == ["done", "done"], output
        for record in records:
            events = [e.event for e in store.events(record.id)]
            cues = [e.cue_id for e in events if isinstance(e, CueFired)]
            assert cues == _cue_ids(plan), record.band_id  # every cue once, in order
            assert sum(isinstance(e, SessionDone) for e in events) == 1


def test_a_lone_run_left_running_is_not_taken_for_a_class(short: Path, tmp_path: Path) -> None:
    """A `companion run` killed mid-workout, then a class on that band and the same history:
    the class does not resume a lone run's workout as its own (nor restart the band)."""
    db = tmp_path / "host.sqlite3"
    with band_server() as url:
        command = _companion("run", short, "--band", url, "--no-mqtt", "--db", db)
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as lone:
            try:
                OutputLines(lone).until("round 1 step 2: Hold", _LINE_TIMEOUT_S)
                lone.send_signal(signal.SIGKILL)
                lone.wait(timeout=10)
            finally:
                if lone.poll() is None:
                    lone.kill()
        again = _run("class", short, "--band", url, "--db", db, timeout=_FINISH_TIMEOUT_S)
    output = " ".join((again.stdout + again.stderr).split())  # the log wraps its lines
    assert "resumed the class" not in output
    assert "runs a workout this class did not start: stop it" in output, output
    with Store(db) as store:
        (record,) = store.sessions()  # the lone run's row, no class row beside it
        assert store.class_of(record.id) is None
