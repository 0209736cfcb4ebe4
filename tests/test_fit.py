"""FIT: a recorded session exported as an activity, FIT workouts imported as plans.

Every file companion writes is read back with two readers that did not write
it (fitdecode and python-fitparse): fit-tool, the writer, ignores misspelt
attributes without an error, so only another reader shows what reached the file.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fitdecode
import fitparse
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import firmware_protocol as fp
from companion.cli import main
from companion.errors import FitFileError, PlanError, ReportError
from companion.events import (
    SessionPaused,
    SessionResumed,
    SessionStarted,
    StepStarted,
)
from companion.fit import export_fit, load_fit_plan, parse_fit_workout, workout_fit
from companion.fit._writer import (
    FileIdMessage,
    FileType,
    Intensity,
    Manufacturer,
    WorkoutMessage,
    WorkoutStepDuration,
    WorkoutStepMessage,
    build_fit,
    fill,
)
from companion.plan import Plan, Step, builtin_plan, load_plan, plan_to_toml
from companion.session import Session
from companion.store import Store
from tests.session.conftest import connected

Messages = dict[str, list[dict[str, Any]]]

PAUSE_AT_S = 90.0  # into the second step of round 1
PAUSE_FOR_S = 30.0


def read_fitdecode(path: Path) -> Messages:
    found: Messages = {}
    with fitdecode.FitReader(
        path, check_crc=fitdecode.CrcCheck.RAISE, error_handling=fitdecode.ErrorHandling.RAISE
    ) as reader:
        for frame in reader:
            if isinstance(frame, fitdecode.FitDataMessage):
                found.setdefault(frame.name, []).append({f.name: f.value for f in frame.fields})
    return found


def read_fitparse(path: Path) -> Messages:
    found: Messages = {}
    for message in fitparse.FitFile(str(path), check_crc=True).get_messages():
        values = {
            name: value.replace(tzinfo=UTC) if isinstance(value, datetime) else value
            for name, value in message.get_values().items()
        }
        found.setdefault(message.name, []).append(values)
    return found


READERS = (read_fitdecode, read_fitparse)


def rr_values(hrv: dict[str, Any]) -> list[float]:
    """An HRV message's RR intervals in seconds (a reader gives a lone value unwrapped)."""
    time = hrv["time"]
    values = time if isinstance(time, list | tuple) else [time]
    return [value for value in values if value is not None]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "sessions.sqlite3") as opened:
        yield opened


async def record_back5_with_a_pause(store: Store) -> str:
    """Two rounds of back-5 on the virtual band, paused 30 s during round 1."""
    async with connected() as (_virtual, band):
        session = Session(band, builtin_plan("back-5", rounds=2), store=store)
        runner = asyncio.create_task(session.run())
        await band.clock.sleep(PAUSE_AT_S)
        await session.pause()
        await band.clock.sleep(PAUSE_FOR_S)
        await session.resume()
        await runner
    return session.session_id


_RECORDED: dict[str, tuple[Path, str]] = {}


async def exported(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Store, str, Path]:
    """The back-5 session with a pause, recorded once for this module, exported as FIT.

    Recorded by whichever test asks first, inside that test (only a test body runs on
    the virtual clock); the others reuse its database, as ten minutes of session
    take a while to simulate even on the virtual clock.
    """
    if "back-5" not in _RECORDED:
        database = tmp_path / "recorded.sqlite3"
        with Store(database) as store:
            _RECORDED["back-5"] = (database, await record_back5_with_a_pause(store))
    database, session_id = _RECORDED["back-5"]
    store = Store(database)
    request.addfinalizer(store.close)
    return store, session_id, export_fit(store, session_id, tmp_path / "session.fit")


def wall_clock(store: Store, session_id: str) -> Callable[[float], datetime]:
    """Host-clock seconds as the wall-clock time the store implies."""
    events = [e.event for e in store.events(session_id)]
    origin = next(e.start for e in events if isinstance(e, SessionStarted))
    started = store.session(session_id).started_at.astimezone(UTC)
    return lambda t: started + timedelta(seconds=t - origin)


# -- export -------------------------------------------------------------------------------


@pytest.mark.looptime
async def test_fit_activity_has_one_lap_per_step_with_its_step_index_and_durations(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store, session_id, path = await exported(tmp_path, request)
    wall = wall_clock(store, session_id)
    events = [e.event for e in store.events(session_id)]
    steps = [
        e for e in events if isinstance(e, StepStarted) and e.kind is not fp.StepKind.COUNTDOWN
    ]
    ends = [*(s.t for s in steps[1:]), max(getattr(e, "t", 0.0) for e in events)]

    for read in READERS:  # two readers, neither of them the writer
        fit = read(path)

        laps = fit["lap"]
        assert len(laps) == len(steps) == 10
        assert [lap["wkt_step_index"] for lap in laps] == [0, 1, 2, 3, 4] * 2
        assert {lap["intensity"] for lap in laps} == {"active"}
        elapsed = [lap["total_elapsed_time"] for lap in laps]
        expected = [end - step.t for step, end in zip(steps, ends, strict=True)]
        assert elapsed[1:] == pytest.approx(expected[1:], abs=0.002)
        assert elapsed[0] >= expected[0] - 0.002  # the first lap also holds samples before it
        assert sum(elapsed) == pytest.approx(fit["session"][0]["total_elapsed_time"], abs=0.01)
        paused = [i for i, lap in enumerate(laps) if lap["total_elapsed_time"] > 80]
        assert paused == [1]  # 60 s of Hip roll plus the 30 s pause
        timer = [lap["total_timer_time"] for lap in laps]
        assert timer[1] == pytest.approx(elapsed[1] - PAUSE_FOR_S, abs=0.05)
        assert [t for i, t in enumerate(timer) if i != 1] == [
            e for i, e in enumerate(elapsed) if i != 1
        ]
        for lap, step in zip(laps[1:], steps[1:], strict=True):
            assert abs(lap["start_time"] - wall(step.t)) <= timedelta(seconds=0.5)


@pytest.mark.looptime
async def test_fit_activity_records_every_heart_rate_sample_and_the_lap_averages_match(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store, session_id, path = await exported(tmp_path, request)
    wall = wall_clock(store, session_id)
    samples = store.heart_rate(session_id)
    summary = store.summary(session_id)

    for read in READERS:  # two readers, neither of them the writer
        fit = read(path)

        records = fit["record"]
        assert len(records) == len(samples) > 600  # 10 minutes at 1 Hz, and the pause
        assert [r["heart_rate"] for r in records] == [s.bpm for s in samples]
        for record, sample in zip(records, samples, strict=True):
            assert abs(record["timestamp"] - wall(sample.t)) <= timedelta(seconds=0.5)
        session = fit["session"][0]
        assert summary.hr_avg is not None
        assert session["avg_heart_rate"] == round(summary.hr_avg)
        assert session["max_heart_rate"] == summary.hr_max
        lap_starts = [lap["start_time"] for lap in fit["lap"]]
        for number, lap in enumerate(fit["lap"]):
            after = lap_starts[number + 1] if number + 1 < len(lap_starts) else None
            inside = [
                r["heart_rate"]
                for r in records
                if (number == 0 or r["timestamp"] >= lap["start_time"])
                and (after is None or r["timestamp"] < after)
            ]
            assert lap["avg_heart_rate"] == round(statistics.fmean(inside))
            assert lap["max_heart_rate"] == max(inside)
        rr = [ms for s in samples for ms in s.rr_ms]
        hrv = [value for message in fit.get("hrv", []) for value in rr_values(message)]
        assert len(hrv) == len(rr) > 0
        assert hrv == pytest.approx([ms / 1000 for ms in rr], abs=0.0011)


@pytest.mark.looptime
async def test_fit_activity_pause_is_a_timer_stop_start_pair_and_timer_time_excludes_it(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store, session_id, path = await exported(tmp_path, request)
    wall = wall_clock(store, session_id)
    events = [e.event for e in store.events(session_id)]
    paused = next(e.t for e in events if isinstance(e, SessionPaused))
    resumed = next(e.t for e in events if isinstance(e, SessionResumed))

    for read in READERS:  # two readers, neither of them the writer
        fit = read(path)

        timers = [e for e in fit["event"] if e["event"] == "timer"]
        assert [e["event_type"] for e in timers] == ["start", "stop_all", "start", "stop_all"]
        assert abs(timers[1]["timestamp"] - wall(paused)) <= timedelta(seconds=0.5)
        assert abs(timers[2]["timestamp"] - wall(resumed)) <= timedelta(seconds=0.5)
        session = fit["session"][0]
        pause = session["total_elapsed_time"] - session["total_timer_time"]
        assert pause == pytest.approx(resumed - paused, abs=0.01)
        assert pause == pytest.approx(PAUSE_FOR_S, abs=0.5)
        assert (session["sport"], session["sub_sport"]) == ("training", "strength_training")
        assert session["num_laps"] == len(fit["lap"])
        assert fit["activity"][0]["num_sessions"] == 1
        assert fit["activity"][0]["total_timer_time"] == pytest.approx(session["total_timer_time"])
        assert fit["file_id"][0]["type"] == "activity"
        assert [d["device_index"] for d in fit["device_info"]] == ["creator", 1]


@pytest.mark.looptime
async def test_fit_activity_of_a_plan_with_rest_between_rounds_marks_the_rests(
    store: Store, tmp_path: Path
) -> None:
    from tests.test_report import record_session  # two rounds, 5 s rest between them

    session_id = await record_session(store)

    fit = read_fitdecode(export_fit(store, session_id, tmp_path / "short.fit"))

    laps = fit["lap"]
    assert [lap["wkt_step_index"] for lap in laps] == [0, 1, 2, 0, 1]  # 2: the round rest
    assert [lap["intensity"] for lap in laps] == ["active", "active", "rest", "active", "active"]
    assert laps[2]["total_elapsed_time"] == pytest.approx(5.0, abs=0.01)


def test_fit_export_to_another_suffix_is_refused_with_the_fit_alternative(
    store: Store, tmp_path: Path
) -> None:
    with pytest.raises(ReportError, match=r"unsupported file type '\.tcx'.*session\.fit"):
        export_fit(store, "feedbeef", tmp_path / "session.tcx")


# -- import -------------------------------------------------------------------------------


def workout_file(path: Path, *steps: dict[str, Any], name: str = "Imported") -> Path:
    """A FIT workout with these steps (fit-tool field names), written by our own writer."""
    messages = [
        fill(
            FileIdMessage(),
            type=FileType.WORKOUT,
            manufacturer=Manufacturer.DEVELOPMENT.value,
            product=0,
            serial_number=7,
            time_created=1_780_000_000_000,
        ),
        fill(WorkoutMessage(local_id=1), workout_name=name, num_valid_steps=len(steps)),
        *(
            fill(WorkoutStepMessage(local_id=2), message_index=index, **fields)
            for index, fields in enumerate(steps)
        ),
    ]
    path.write_bytes(build_fit(messages))
    return path


def timed(
    name: str, seconds: float, intensity: Intensity = Intensity.ACTIVE, **more: Any
) -> dict[str, Any]:
    return {
        "workout_step_name": name,
        "duration_type": WorkoutStepDuration.TIME,
        "duration_time": seconds,
        "intensity": intensity,
        **more,
    }


def repeat(first: int, times: int) -> dict[str, Any]:
    return {
        "duration_type": WorkoutStepDuration.REPEAT_UNTIL_STEPS_CMPLT,
        "duration_step": first,
        "target_repeat_steps": times,
    }


def test_plain_workout_becomes_a_plan_with_names_tips_and_rests(tmp_path: Path) -> None:
    path = workout_file(
        tmp_path / "plain.fit",
        timed("Plank", 45, notes="Straight back"),
        timed("Breathe", 15, Intensity.RECOVERY),
        timed("Side plank", 40.5, notes="Hips up [switch side at half time]"),
        timed("", 20, Intensity.REST),
        name="Core",
    )

    plan = load_fit_plan(path)

    assert (plan.name, plan.title, plan.rounds, plan.round_rest_s) == ("Core", "Core", 1, 0.0)
    assert plan.steps == (
        Step("Plank", 45.0, fp.StepKind.EXERCISE, "Straight back"),
        Step("Breathe", 15.0, fp.StepKind.REST),
        Step("Side plank", 40.5, fp.StepKind.EXERCISE, "Hips up", switch_side=True),
        Step("Rest", 20.0, fp.StepKind.REST),
    )


def test_a_repeat_of_the_whole_workout_becomes_rounds(tmp_path: Path) -> None:
    path = workout_file(
        tmp_path / "five.fit", timed("Squat", 40), timed("Rest", 20, Intensity.REST), repeat(0, 5)
    )

    plan = load_fit_plan(path)

    assert plan.rounds == 5
    assert [s.name for s in plan.steps] == ["Squat", "Rest"]
    assert plan.total_s == 5 * 60


def test_nested_repeats_expand_inside_rounds(tmp_path: Path) -> None:
    path = workout_file(
        tmp_path / "nested.fit",
        timed("Push-up", 20),  # 0
        timed("Plank", 20),  # 1
        repeat(0, 2),  # 2: push-up, plank, twice
        timed("Rest", 30, Intensity.REST),  # 3
        repeat(0, 3),  # 4: all of it, three times
    )

    plan = load_fit_plan(path)

    assert plan.rounds == 3
    assert [s.name for s in plan.steps] == ["Push-up", "Plank", "Push-up", "Plank", "Rest"]


def test_repeats_inside_a_longer_workout_are_written_out(tmp_path: Path) -> None:
    path = workout_file(
        tmp_path / "warm.fit",
        timed("Warm up", 60, Intensity.WARMUP),
        timed("Sprint", 10, Intensity.INTERVAL),
        timed("Walk", 20, Intensity.RECOVERY),
        repeat(1, 3),
        timed("Cool down", 60, Intensity.COOLDOWN),
    )

    plan = load_fit_plan(path)

    assert plan.rounds == 1
    assert [s.name for s in plan.steps] == ["Warm up", *["Sprint", "Walk"] * 3, "Cool down"]
    assert [s.kind for s in plan.steps].count(fp.StepKind.REST) == 3


@pytest.mark.parametrize(
    ("step", "said"),
    [
        (
            {"duration_type": WorkoutStepDuration.DISTANCE, "duration_distance": 400},
            r"step 2 'Odd' \(400 m\) ends after a distance",
        ),
        ({"duration_type": WorkoutStepDuration.OPEN}, r"step 2 'Odd' ends when the lap button"),
        (
            {"duration_type": WorkoutStepDuration.CALORIES, "duration_calories": 50},
            r"step 2 'Odd' \(50 kcal\) ends after a number of calories",
        ),
        (
            {"duration_type": WorkoutStepDuration.REPS, "duration_reps": 12},
            r"step 2 'Odd' \(12 reps\) counts repetitions without a time",
        ),
        (
            {"duration_type": WorkoutStepDuration.HR_LESS_THAN, "duration_hr": 120},
            r"step 2 'Odd' \(120 bpm\) ends on a heart rate",
        ),
    ],
    ids=["distance", "open", "calories", "reps", "heart-rate"],
)
def test_a_step_the_band_cannot_time_is_refused_naming_the_step_and_the_fix(
    tmp_path: Path, step: dict[str, Any], said: str
) -> None:
    path = workout_file(
        tmp_path / "odd.fit", timed("Plank", 30), {"workout_step_name": "Odd", **step}
    )

    with pytest.raises(PlanError, match=said) as refused:
        load_fit_plan(path)

    assert "odd.fit" in str(refused.value)
    assert "Give it a time instead" in str(refused.value)


def test_a_repeat_until_a_time_is_refused(tmp_path: Path) -> None:
    path = workout_file(
        tmp_path / "until.fit",
        timed("Burpee", 30),
        {
            "duration_type": WorkoutStepDuration.REPEAT_UNTIL_TIME,
            "duration_step": 0,
            "target_repeat_time": 600,
        },
    )

    with pytest.raises(PlanError, match=r"step 2 repeats until a time.*repeat of N times"):
        load_fit_plan(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.text(
        st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), min_size=1, max_size=20
    ),
    title=st.text(
        st.characters(codec="utf-8", categories=["L", "N", "Zs"]), min_size=1, max_size=30
    ),
    steps=st.lists(
        st.builds(
            Step,
            name=st.text(
                st.characters(codec="utf-8", categories=["L", "N", "Zs"]), min_size=1, max_size=24
            ),
            duration_s=st.integers(1000, 3_600_000).map(lambda ms: ms / 1000),
            kind=st.sampled_from([fp.StepKind.EXERCISE, fp.StepKind.REST]),
            tip=st.text(st.characters(codec="utf-8", categories=["L", "P", "Zs"]), max_size=60),
            switch_side=st.booleans(),
        ),
        min_size=1,
        max_size=8,
    ),
    rounds=st.integers(1, 20),
    round_rest_s=st.integers(0, 600),
)
def test_a_time_only_plan_survives_fit_workout_and_toml_unchanged(
    name: str, title: str, steps: list[Step], rounds: int, round_rest_s: int
) -> None:
    def clean(text: str) -> str:
        return " ".join(text.split())

    steps = [
        Step(clean(s.name) or "x", s.duration_s, s.kind, clean(s.tip), s.switch_side) for s in steps
    ]
    plan = Plan(
        name=clean(name) or "x",
        title=clean(title) or "x",
        steps=tuple(steps),
        rounds=rounds,
        round_rest_s=float(round_rest_s) if rounds > 1 else 0.0,
    )

    back = parse_fit_workout(workout_fit(plan), "property.fit")

    assert back == plan
    assert load_plan_text(plan_to_toml(back)) == plan


def load_plan_text(text: str) -> Plan:
    import tomllib

    from companion.plan import parse_plan

    return parse_plan(tomllib.loads(text), "<toml>")


def test_toml_of_a_built_in_plan_loads_back_equal(tmp_path: Path) -> None:
    plan = builtin_plan("back-5", rounds=3)
    path = tmp_path / "back-5.toml"
    path.write_text(plan_to_toml(plan), encoding="utf-8")

    assert load_plan(path) == plan


# -- bad input ----------------------------------------------------------------------------


@pytest.fixture
def good_workout() -> bytes:
    return workout_fit(builtin_plan("back-5"))


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: data[:40] + bytes([data[40] ^ 0xFF]) + data[41:], "CRC check failed"),
        (lambda data: b'name = "x"\n[[steps]]\nname = "Plank"\nduration = 20\n', "not a FIT file"),
        (lambda data: b"", "not a FIT file"),
    ],
    ids=["truncated", "crc", "toml-named-fit", "empty"],
)
def test_a_damaged_or_foreign_file_is_a_clear_error_with_the_fix(
    tmp_path: Path, good_workout: bytes, spoil: Callable[[bytes], bytes], said: str
) -> None:
    path = tmp_path / "bad.fit"
    path.write_bytes(spoil(good_workout))

    with pytest.raises(FitFileError, match=said) as refused:
        load_fit_plan(path)

    message = str(refused.value)
    assert message.startswith(f"{path}: ")
    assert any(fix in message for fix in ("again", "Give a .fit workout file"))


@pytest.mark.looptime
async def test_an_activity_given_as_a_workout_says_which_file_to_export(
    store: Store, tmp_path: Path
) -> None:
    from tests.test_report import record_session

    activity = export_fit(store, await record_session(store), tmp_path / "activity.fit")

    with pytest.raises(
        FitFileError, match=r"is an activity file, not a workout\. Export the workout"
    ):
        load_fit_plan(activity)


def test_without_the_fit_extra_the_import_error_names_the_extra() -> None:
    blocked = "import sys; sys.modules['fit_tool'] = None; import companion.fit"
    result = subprocess.run(
        [sys.executable, "-c", blocked], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "ImportError: writing FIT files needs the optional 'fit' extra" in result.stderr
    assert "pip install 'companion[fit]'" in result.stderr


# -- the CLI ------------------------------------------------------------------------------


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_plans_import_writes_a_toml_plan_that_runs(tmp_path: Path) -> None:
    workout = workout_file(
        tmp_path / "core.fit", timed("Plank", 20), timed("Rest", 5, Intensity.REST), repeat(0, 2)
    )
    target = tmp_path / "core.toml"

    result = invoke("plans", "import", workout, "-o", target)

    assert result.exit_code == 0, result.output
    assert "2 steps x 2 rounds" in " ".join(result.output.split())
    plan = load_plan(target)
    assert [s.name for s in plan.steps] == ["Plank", "Rest"]
    assert plan.rounds == 2
    shown = invoke("plans", workout)
    assert shown.exit_code == 0
    assert "Plank" in shown.output


def test_run_takes_a_fit_workout_and_report_exports_fit(tmp_path: Path) -> None:
    workout = workout_file(tmp_path / "short.fit", timed("Plank", 10), timed("Bridge", 10))
    db = tmp_path / "sessions.sqlite3"

    ran = invoke("run", workout, "--sim", "--speed", "60", "--no-mqtt", "--db", db)

    assert ran.exit_code == 0, ran.output
    assert "round 1 step 2: Bridge" in ran.output
    with Store(db) as store:
        session_id = store.sessions()[0].id
    out = tmp_path / "out.fit"
    reported = invoke("report", session_id, "-o", tmp_path / "r.png", "--fit", out, "--db", db)
    assert reported.exit_code == 0, reported.output
    assert f"FIT written to {out}" in " ".join(reported.output.split())
    assert [lap["wkt_step_index"] for lap in read_fitparse(out)["lap"]] == [0, 1]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\x0e\x10garbage", "not a FIT file"),
        (None, "step 1 'Run' (400 m) ends after a distance"),
    ],
    ids=["not-fit", "distance"],
)
def test_plans_import_of_a_bad_file_is_one_error_line_not_a_traceback(
    tmp_path: Path, content: bytes | None, said: str
) -> None:
    path = tmp_path / "bad.fit"
    if content is None:
        workout_file(
            path,
            {
                "workout_step_name": "Run",
                "duration_type": WorkoutStepDuration.DISTANCE,
                "duration_distance": 400,
            },
        )
    else:
        path.write_bytes(content)

    result = invoke("plans", "import", path, "-o", tmp_path / "never.toml")

    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert said in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "never.toml").exists()


def test_run_of_a_bad_fit_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.fit"
    path.write_bytes(b"not a fit file at all")

    result = invoke("run", path, "--sim", "--no-mqtt", "--db", tmp_path / "db.sqlite3")

    assert result.exit_code == 1
    assert "not a FIT file" in " ".join(result.output.split())
    assert "Traceback" not in result.output
