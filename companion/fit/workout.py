"""FIT workout files: a plan written as a workout, and a workout read back as a plan.

A FIT workout is a list of steps, each ending after a duration of some type
(time, distance, a lap press...), with *repeat* steps that send the workout
back to an earlier step a number of times. The band only times steps, so:

- time steps (and "repetition time" steps, which are timed) become steps;
  intensity rest or recovery makes them rests, any other intensity (active,
  warm-up, cool-down, interval) an exercise; the step name is the name, the
  notes are the tip;
- a repeat of the whole workout becomes the plan's rounds; a workout of
  ``[steps, rest] x (N - 1)`` then the same steps again (what
  :func:`workout_fit` writes for a plan with a rest between rounds) becomes N
  rounds with that rest between them; any other repeat, nested or not, is
  expanded into the steps it stands for;
- distance, open ("until lap press"), calories, reps without a time, heart
  rate and power steps, and repeats until a time, distance or heart rate, are
  refused with a message that names the step and what would work.

``docs/plans.md`` has the same mapping as a table. Parsing is pure
(:func:`parse_fit_workout` takes bytes); :func:`load_fit_plan` reads a file.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import firmware_protocol as fp

from ..errors import FitFileError, PlanError
from ..plan import MAX_ROUNDS, Plan, Step, parse_plan
from ._writer import (
    FileIdMessage,
    FileType,
    Intensity,
    Manufacturer,
    Sport,
    SubSport,
    WorkoutMessage,
    WorkoutStepDuration,
    WorkoutStepMessage,
    WorkoutStepTarget,
    build_fit,
    fill,
    fit_ms,
)

try:
    import fitdecode
except ImportError as exc:  # the optional extra is not installed
    raise ImportError(
        "reading FIT files needs the optional 'fit' extra: pip install 'companion[fit]'"
    ) from exc

__all__ = ["ROUND_REST_NAME", "load_fit_plan", "parse_fit_workout", "workout_fit"]

logger = logging.getLogger(__name__)

ROUND_REST_NAME: Final = "Round rest"
# A switch-side step has no FIT equivalent: it is said in the step's notes, readable on a
# watch, and read back from there.
_SWITCH_MARK: Final = "[switch side at half time]"
_MAX_STEPS: Final = 255  # the most a plan can hold on the wire
_REST_INTENSITIES: Final = frozenset({"rest", "recovery"})
_TIMED: Final = frozenset({"time", "repetition_time"})
_REFUSED: Final = {
    "distance": "ends after a distance; the band only times steps",
    "open": "ends when the lap button is pressed; the band has no lap button",
    "calories": "ends after a number of calories; the band cannot count them",
    "reps": "counts repetitions without a time; the band only times steps",
    "hr_less_than": "ends on a heart rate; the band runs steps on its own clock",
    "hr_greater_than": "ends on a heart rate; the band runs steps on its own clock",
    "power_less_than": "ends on a power reading; the band has no power meter",
    "power_greater_than": "ends on a power reading; the band has no power meter",
}
_TIME_FIX: Final = "Give it a time instead (e.g. 45 s) in the workout editor, then export it again"


# -- writing ------------------------------------------------------------------------------


def workout_fit(plan: Plan, *, created: datetime | None = None) -> bytes:
    """A plan as a FIT workout file (bytes), for a watch or a training platform.

    Steps keep their index in the plan; a rest between rounds is one more step
    after them, so ``[steps, rest] x (rounds - 1)`` then the steps once more:
    exactly the band's timeline, with no rest after the last round.
    """
    moment = created if created is not None else datetime.now(UTC)
    steps: list[Any] = []

    def add(**fields: Any) -> None:
        steps.append(fill(WorkoutStepMessage(local_id=2), message_index=len(steps), **fields))

    def block() -> None:
        for step in plan.steps:
            notes = f"{step.tip} {_SWITCH_MARK}".strip() if step.switch_side else step.tip
            add(
                workout_step_name=step.name,
                duration_type=WorkoutStepDuration.TIME,
                duration_time=step.duration_s,
                target_type=WorkoutStepTarget.OPEN,
                intensity=Intensity.REST if step.kind is fp.StepKind.REST else Intensity.ACTIVE,
                notes=notes or None,
            )

    block()
    if plan.rounds > 1:
        resting = plan.round_rest_s > 0
        if resting:
            add(
                workout_step_name=ROUND_REST_NAME,
                duration_type=WorkoutStepDuration.TIME,
                duration_time=plan.round_rest_s,
                target_type=WorkoutStepTarget.OPEN,
                intensity=Intensity.REST,
            )
        add(
            duration_type=WorkoutStepDuration.REPEAT_UNTIL_STEPS_CMPLT,
            duration_step=0,
            target_repeat_steps=plan.rounds - 1 if resting else plan.rounds,
        )
        if resting:
            block()
    header = [
        fill(
            FileIdMessage(local_id=0),
            type=FileType.WORKOUT,
            manufacturer=Manufacturer.DEVELOPMENT.value,
            product=0,
            serial_number=0,
            time_created=fit_ms(moment),
        ),
        fill(
            WorkoutMessage(local_id=1),
            workout_name=plan.name,
            sport=Sport.TRAINING,
            sub_sport=SubSport.STRENGTH_TRAINING,
            num_valid_steps=len(steps),
            workout_description=plan.title if plan.title != plan.name else None,
        ),
    ]
    return build_fit([*header, *steps])


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _WorkoutStep:
    """One workout_step message, as decoded."""

    index: int
    name: str
    duration_type: str  # fitdecode's name ("time", "distance"...), or the number if unknown
    value: float | None  # seconds, metres, the step to repeat from... by duration_type
    repeat_count: int | None
    rest: bool
    notes: str

    def label(self) -> str:
        return f"step {self.index + 1}" + (f" {self.name!r}" if self.name else "")


@dataclass(frozen=True, slots=True)
class _Repeat:
    first: int  # message index of the first step repeated
    times: int
    body: tuple[_Node, ...]


_Node = Step | _Repeat


def load_fit_plan(path: str | Path) -> Plan:
    """Read a FIT workout file as a plan (see the module docs for what maps)."""
    target = Path(path)
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise FitFileError(f"{target}: cannot read the workout file ({exc.strerror})") from exc
    return parse_fit_workout(data, str(target), default_name=target.stem)


def parse_fit_workout(data: bytes, source: str = "<fit>", *, default_name: str = "") -> Plan:
    """A FIT workout file's bytes as a plan; ``source`` names the file in errors."""
    messages = _decode(data, source)
    file_ids = messages.get("file_id", [])
    kind = file_ids[0].get("type") if file_ids else None
    if kind != "workout":
        raise FitFileError(
            f"{source}: this FIT file is {_article(kind)}, not a workout. "
            "Export the workout itself (a workout file) from your training platform; "
            "`companion report SESSION --fit` writes activities, it does not read them"
        )
    workout = (messages.get("workout") or [{}])[0]
    name = str(workout.get("wkt_name") or default_name or "fit-workout").strip()
    title = str(workout.get("wkt_description") or name).strip()
    raw = sorted(
        (_step(fields, number) for number, fields in enumerate(messages.get("workout_step", []))),
        key=lambda s: s.index,
    )
    if not raw:
        raise FitFileError(
            f"{source}: the workout {name!r} has no steps. "
            "Add timed steps to it and export it again"
        )
    nodes = _tree(raw, source)
    plan_steps, rounds, round_rest = _layout(nodes)
    if len(plan_steps) > _MAX_STEPS:
        raise PlanError(
            f"{source}: the workout expands to {len(plan_steps)} steps (its repeats written "
            f"out); a plan holds at most {_MAX_STEPS}. Use fewer repeats, or split the workout"
        )
    plan = parse_plan(
        {
            "name": name,
            "title": title,
            "rounds": rounds,
            "round_rest": round_rest,
            "steps": [
                {
                    "name": s.name,
                    "duration": s.duration_s,
                    "kind": "rest" if s.kind is fp.StepKind.REST else "exercise",
                    "tip": s.tip,
                    "switch_side": s.switch_side,
                }
                for s in plan_steps
            ],
        },
        source,
    )
    logger.info("read %s: %d steps x %d rounds", source, len(plan.steps), plan.rounds)
    return plan


def _article(kind: object) -> str:
    if kind is None:
        return "of no declared type (no file_id message)"
    text = str(kind)
    return f"an {text} file" if text[:1] in "aeiou" else f"a {text} file"


def _decode(data: bytes, source: str) -> dict[str, list[dict[str, Any]]]:
    """Every data message of the file by name, each as {field name: value}."""
    messages: dict[str, list[dict[str, Any]]] = {}
    if not data:
        raise FitFileError(
            f"{source}: the file is empty, not a FIT file. Give a .fit workout file as "
            "exported by a training platform, or a TOML plan (see docs/plans.md)"
        )
    reader = fitdecode.FitReader(
        io.BytesIO(data),
        check_crc=fitdecode.CrcCheck.RAISE,
        error_handling=fitdecode.ErrorHandling.RAISE,
    )
    try:
        with reader:
            for frame in reader:
                if isinstance(frame, fitdecode.FitDataMessage):
                    fields = {f.name: f.value for f in frame.fields if f.value is not None}
                    messages.setdefault(frame.name, []).append(fields)
    except fitdecode.FitHeaderError as exc:
        raise FitFileError(
            f"{source}: not a FIT file (it has no FIT header). Give a .fit workout file as "
            "exported by a training platform, or a TOML plan (see docs/plans.md)"
        ) from exc
    except fitdecode.FitCRCError as exc:
        raise FitFileError(
            f"{source}: the FIT file is damaged (its CRC check failed: {exc}). "
            "Export or download it again"
        ) from exc
    except fitdecode.FitEOFError as exc:
        raise FitFileError(
            f"{source}: the FIT file is truncated ({exc}). Download or copy it again, in full"
        ) from exc
    except fitdecode.FitError as exc:
        raise FitFileError(
            f"{source}: the FIT file is damaged ({exc}). Export or download it again"
        ) from exc
    return messages


def _number(fields: Mapping[str, Any], *names: str) -> float | None:
    for name in names:
        value = fields.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _step(fields: Mapping[str, Any], number: int) -> _WorkoutStep:
    duration = fields.get("duration_type")
    intensity = fields.get("intensity")
    index = fields.get("message_index")
    return _WorkoutStep(
        index=index if isinstance(index, int) else number,
        name=str(fields.get("wkt_step_name") or "").strip(),
        duration_type=str(duration) if duration is not None else "open",
        value=_number(
            fields,
            "duration_time",
            "duration_distance",
            "duration_calories",
            "duration_reps",
            "duration_step",
            "duration_hr",
            "duration_power",
            "duration_value",
        ),
        repeat_count=(
            int(count) if (count := _number(fields, "repeat_steps")) is not None else None
        ),
        rest=str(intensity) in _REST_INTENSITIES,
        notes=str(fields.get("notes") or "").strip(),
    )


def _tree(raw: Sequence[_WorkoutStep], source: str) -> tuple[_Node, ...]:
    """The steps as a tree: each repeat step gathers the steps (and repeats) it sends back to."""
    built: list[tuple[int, _Node]] = []  # (message index of the node's first step, node)
    for step in raw:
        if step.duration_type.startswith("repeat_until_"):
            first = _repeat_start(step, built, source)
            built.append((first, _repeat(step, built, source)))  # takes its body from built
            continue
        built.append((step.index, _leaf(step, source)))
    return tuple(node for _, node in built)


def _repeat_start(step: _WorkoutStep, built: list[tuple[int, _Node]], source: str) -> int:
    first = int(step.value) if step.value is not None else -1
    if not built or first < built[0][0] or first >= step.index:
        raise PlanError(
            f"{source}: {step.label()} repeats from step {first + 1}, which is not before it. "
            "The file is inconsistent: fix the repeat in the workout editor and export it again"
        )
    return first


def _repeat(step: _WorkoutStep, built: list[tuple[int, _Node]], source: str) -> _Repeat:
    if step.duration_type != "repeat_until_steps_cmplt":
        until = step.duration_type.removeprefix("repeat_until_").replace("_", " ")
        raise PlanError(
            f"{source}: {step.label()} repeats until a {until}; the band repeats a set number "
            "of times only. Make it a repeat of N times in the workout editor"
        )
    first = int(step.value) if step.value is not None else -1
    starts = [start for start, _ in built]
    if first not in starts:
        raise PlanError(
            f"{source}: {step.label()} repeats from step {first + 1}, inside another repeat. "
            "Overlapping repeats cannot be run; nest them instead"
        )
    times = step.repeat_count
    if times is None or times < 1:
        raise PlanError(
            f"{source}: {step.label()} repeats {times or 0} times. "
            "A repeat needs a count of 1 or more"
        )
    cut = starts.index(first)
    body = tuple(node for _, node in built[cut:])
    del built[cut:]
    return _Repeat(first, times, body)


def _leaf(step: _WorkoutStep, source: str) -> Step:
    kind = step.duration_type
    if kind not in _TIMED:
        problem = _REFUSED.get(kind, f"ends on a {kind.replace('_', ' ')}, which the band cannot")
        amount = "" if step.value is None or kind == "open" else f" ({_amount(kind, step.value)})"
        raise PlanError(f"{source}: {step.label()}{amount} {problem}. {_TIME_FIX}")
    seconds = step.value
    if seconds is None or not 1 <= seconds <= 3600:
        raise PlanError(
            f"{source}: {step.label()} lasts {seconds or 0:g} s; a step must last 1 to 3600 s. "
            "Change its time in the workout editor"
        )
    tip = step.notes
    switch = _SWITCH_MARK in tip
    if switch:
        tip = re.sub(r"\s*" + re.escape(_SWITCH_MARK), "", tip).strip()
    name = step.name or ("Rest" if step.rest else f"Step {step.index + 1}")
    return Step(
        name=name,
        duration_s=seconds,
        kind=fp.StepKind.REST if step.rest else fp.StepKind.EXERCISE,
        tip=tip,
        switch_side=switch,
    )


def _amount(kind: str, value: float) -> str:
    units = {"distance": "m", "calories": "kcal", "reps": "reps", "hr_less_than": "bpm"}
    return f"{value:g} {units.get(kind, '')}".strip()


def _expand(nodes: Sequence[_Node]) -> Iterator[Step]:
    for node in nodes:
        if isinstance(node, _Repeat):
            for _ in range(node.times):
                yield from _expand(node.body)
        else:
            yield node


def _layout(nodes: tuple[_Node, ...]) -> tuple[list[Step], int, float]:
    """Steps, rounds and rest between rounds: rounds where the shape allows, else written out."""
    if len(nodes) == 1 and isinstance(nodes[0], _Repeat) and nodes[0].times <= MAX_ROUNDS:
        return list(_expand(nodes[0].body)), nodes[0].times, 0.0
    first = nodes[0]
    if isinstance(first, _Repeat) and first.times + 1 <= MAX_ROUNDS and len(first.body) >= 2:
        *block, rest = first.body
        again = list(_expand(nodes[1:]))
        if (
            isinstance(rest, Step)
            and rest.kind is fp.StepKind.REST
            and list(_expand(block)) == again
        ):
            return again, first.times + 1, rest.duration_s
    return list(_expand(nodes)), 1, 0.0
