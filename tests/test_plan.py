"""Plans: the built-in back workout, TOML files, and an error for each kind of mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import firmware_protocol as fp
from companion.errors import PlanError
from companion.plan import BUILTIN_PLANS, builtin_plan, load_plan, parse_plan, resolve_plan

GOOD: dict[str, Any] = {"name": "mine", "steps": [{"name": "Plank", "duration": 30}]}


def test_back_5_is_the_reference_workout() -> None:
    plan = builtin_plan("back-5")
    assert [s.name for s in plan.steps] == [
        "QL lifts",
        "Hip roll",
        "Cat scratch",
        "Superman",
        "Crunches",
    ]
    assert all(s.duration_s == 60 for s in plan.steps)
    assert [s.switch_side for s in plan.steps] == [True, False, False, False, False]
    assert all(s.tip for s in plan.steps)
    assert plan.rounds == 1
    assert plan.countdown == 3
    assert any("Stop immediately if in pain" in note for note in plan.notes)
    assert builtin_plan("back-5", rounds=5).total_s == 25 * 60


def test_back_5_cues_switch_side_at_half_time_and_count_down_each_transition() -> None:
    timeline = fp.build_timeline(builtin_plan("back-5").to_wire())
    kinds = [(cue.offset_us // 1_000_000, cue.kind) for cue in timeline.cues]
    assert (30, fp.CueKind.SWITCH_SIDE) in kinds
    assert [k for k in kinds if 57 <= k[0] <= 59] == [
        (57, fp.CueKind.COUNTDOWN),
        (58, fp.CueKind.COUNTDOWN),
        (59, fp.CueKind.COUNTDOWN),
    ]
    assert kinds[-1] == (300, fp.CueKind.WORKOUT_DONE)


def test_every_builtin_plan_loads() -> None:
    assert "back-5" in BUILTIN_PLANS
    for name in BUILTIN_PLANS:
        assert builtin_plan(name).steps


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        ({"name": ""}, "name", "short name"),
        ({"steps": []}, "steps", "[[steps]]"),
        ({"steps": [{"duration": 30}]}, "steps[0].name", "Add it"),
        ({"steps": [{"name": "Plank"}]}, "steps[0].duration", "Add it"),
        ({"steps": [{"name": "Plank", "duration": "1 min"}]}, "steps[0].duration", "number"),
        ({"steps": [{"name": "Plank", "duration": 0}]}, "steps[0].duration", "1 to 3600"),
        ({"steps": [{"name": "Plank", "duration": 30, "kind": "yoga"}]}, "steps[0].kind", "rest"),
        (
            {"steps": [{"name": "Plank", "duration": 30, "switch_side": "yes"}]},
            "steps[0].switch_side",
            "true or false",
        ),
        ({"steps": [{"name": "Plank", "durration": 30}]}, "steps[0].durration", "'duration'"),
        ({"rounds": 0}, "rounds", "1 to 20"),
        ({"rounds": True}, "rounds", "1 to 20"),
        ({"round_rest": -1}, "round_rest", "0 to 3600"),
        ({"countdown": 9}, "countdown", "0 to 5"),
        ({"notes": "be careful"}, "notes", "list of text"),
        ({"colour": "red"}, "colour", "unknown key"),
        ({"patterns": {"swich_side": {"pulses": [[1, 0]]}}}, "patterns.swich_side", "switch_side"),
        ({"patterns": {"countdown": {"pulses": []}}}, "patterns.countdown.pulses", "pairs"),
        (
            {"patterns": {"countdown": {"pulses": [[1, 0]], "intensity": 300}}},
            "patterns.countdown.intensity",
            "0 to 255",
        ),
    ],
)
def test_each_mistake_names_the_source_the_field_and_the_fix(
    change: dict[str, Any], field: str, fix: str
) -> None:
    with pytest.raises(PlanError) as raised:
        parse_plan({**GOOD, **change}, "mine.toml")
    message = str(raised.value)
    assert message.startswith(f"mine.toml: {field}")
    assert fix in message


def test_a_file_that_is_not_toml_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(PlanError, match=r"broken\.toml: not valid TOML.*docs/plans\.md"):
        load_plan(path)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"nope\.toml: cannot read the plan file"):
        load_plan(tmp_path / "nope.toml")


def test_an_unknown_name_lists_the_built_in_plans() -> None:
    with pytest.raises(PlanError, match="back-5"):
        resolve_plan("leg-day")


def test_a_plan_file_round_trips_through_toml(tmp_path: Path) -> None:
    path = tmp_path / "core.toml"
    path.write_text(
        'name = "core"\nrounds = 2\nround_rest = 15\n'
        "[[steps]]\n"
        'name = "Side plank"\nduration = 40\nswitch_side = true\ntip = "Hips up"\n'
        "[[steps]]\n"
        'name = "Breathe"\nduration = 20\nkind = "rest"\n'
        "[patterns.next_exercise]\nintensity = 200\npulses = [[300, 100], [300, 0]]\n"
    )
    plan = resolve_plan(str(path), rounds=3)
    assert plan.rounds == 3
    assert plan.steps[1].kind is fp.StepKind.REST
    next_pattern = next(p for p in plan.patterns if p.cue is fp.CueKind.NEXT_EXERCISE)
    assert next_pattern.intensity == 200
    assert next_pattern.duration_ms == 700
    assert plan.total_s == 3 * 60 + 2 * 15
