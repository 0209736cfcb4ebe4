"""Workout plans: the model, TOML files, validation, and the built-in workouts.

A plan is what the person follows (names, tips, notes such as "stop
immediately if in pain"); :meth:`Plan.to_wire` is what the band stores (names
and timings only). Every validation error names the file, the field and the
fix, because a plan file is usually written by hand. The format is documented
in ``docs/plans.md``.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Final

import firmware_protocol as fp

from .errors import PlanError, PlanTooLargeError
from .toml_file import read_toml

__all__ = [
    "BUILTIN_PLANS",
    "MAX_ROUNDS",
    "Plan",
    "Step",
    "builtin_plan",
    "load_plan",
    "parse_plan",
    "plan_to_toml",
    "resolve_plan",
]

MAX_ROUNDS: Final = 20
_STEP_KINDS: Final = {"exercise": fp.StepKind.EXERCISE, "rest": fp.StepKind.REST}
_CUE_NAMES: Final = {kind.name.lower(): kind for kind in fp.CueKind}
_PLAN_KEYS: Final = (
    "name",
    "title",
    "rounds",
    "round_rest",
    "countdown",
    "notes",
    "steps",
    "patterns",
)
_STEP_KEYS: Final = ("name", "duration", "kind", "tip", "switch_side")
_PATTERN_KEYS: Final = ("intensity", "pulses")


@dataclass(frozen=True, slots=True)
class Step:
    """One step: ``duration_s`` of an exercise (or rest), with a tip for the person."""

    name: str
    duration_s: float
    kind: fp.StepKind = fp.StepKind.EXERCISE
    tip: str = ""
    switch_side: bool = False  # one side, then the other: a "switch side" cue at half time


@dataclass(frozen=True, slots=True)
class Plan:
    """A workout: ``steps`` repeated ``rounds`` times, with cue patterns and notes."""

    name: str
    title: str
    steps: tuple[Step, ...]
    rounds: int = 1
    round_rest_s: float = 0.0
    countdown: int = 3
    patterns: tuple[fp.Pattern, ...] = fp.DEFAULT_PATTERNS
    notes: tuple[str, ...] = ()

    def with_rounds(self, rounds: int) -> Plan:
        """The same plan repeated ``rounds`` times (1..MAX_ROUNDS)."""
        if not 1 <= rounds <= MAX_ROUNDS:
            raise PlanError(f"rounds must be 1 to {MAX_ROUNDS}, got {rounds}")
        return replace(self, rounds=rounds)

    @property
    def total_s(self) -> float:
        """How long the whole workout takes, rests included."""
        return (
            self.rounds * sum(s.duration_s for s in self.steps)
            + (self.rounds - 1) * self.round_rest_s
        )

    def to_wire(self) -> fp.WirePlan:
        """The plan as the band stores it."""
        return fp.WirePlan(
            name=self.name,
            rounds=self.rounds,
            round_rest_ms=round(self.round_rest_s * 1000),
            countdown=self.countdown,
            steps=tuple(
                fp.WireStep(s.name, s.kind, round(s.duration_s * 1000), s.switch_side)
                for s in self.steps
            ),
            patterns=self.patterns,
        )

    def check_fits(self, capabilities: fp.Capabilities) -> None:
        """Raise :class:`PlanTooLargeError` if this band cannot hold the plan (nothing is sent)."""
        if len(self.steps) > capabilities.max_steps:
            raise PlanTooLargeError(
                f"plan {self.name!r} has {len(self.steps)} steps; this band holds at most "
                f"{capabilities.max_steps}. Split it into shorter plans."
            )
        for index, step in enumerate(self.steps):
            size = len(step.name.encode("utf-8"))
            if size > capabilities.max_name_length:
                raise PlanTooLargeError(
                    f"step {index + 1} name {step.name!r} is {size} bytes; this band shows at "
                    f"most {capabilities.max_name_length}. Shorten it (the tip can hold the rest)."
                )
        encoded = len(fp.encode_plan(self.to_wire()))
        if encoded > capabilities.max_plan_bytes:
            raise PlanTooLargeError(
                f"plan {self.name!r} takes {encoded} bytes; this band holds "
                f"{capabilities.max_plan_bytes}. Use fewer steps or shorter names."
            )


# -- parsing and validation -------------------------------------------------------------


class _Where:
    """Builds error messages that name the source and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, field: str, problem: str, fix: str) -> PlanError:
        return PlanError(f"{self.source}: {field}: {problem}. {fix}")

    def check_keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], field: str) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = (
                    f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(allowed)}"
                )
                raise self.error(f"{field}{key}", "unknown key", hint.capitalize())


def _number(where: _Where, table: Mapping[str, Any], key: str, field: str, default: Any) -> float:
    value = table.get(key, default)
    if value is None:
        raise where.error(field, "missing", f"Add it, e.g. {key} = 60 (seconds)")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(field, f"must be a number, got {value!r}", f"e.g. {key} = 60")
    return float(value)


def _text(
    where: _Where, table: Mapping[str, Any], key: str, field: str, default: str | None
) -> str:
    value = table.get(key, default)
    if value is None:
        raise where.error(field, "missing", f'Add it, e.g. {key} = "QL lifts"')
    if not isinstance(value, str):
        raise where.error(field, f"must be text, got {value!r}", f'e.g. {key} = "QL lifts"')
    return value


def _step(where: _Where, index: int, table: Any) -> Step:
    field = f"steps[{index}]"
    if not isinstance(table, dict):
        raise where.error(field, "must be a table", "Write each step as a [[steps]] table")
    where.check_keys(table, _STEP_KEYS, f"{field}.")
    name = _text(where, table, "name", f"{field}.name", None).strip()
    if not name:
        raise where.error(f"{field}.name", "is empty", "Give the step a name")
    duration = _number(where, table, "duration", f"{field}.duration", None)
    if not 1 <= duration <= 3600:
        raise where.error(
            f"{field}.duration",
            f"{duration:g} s is out of range",
            "Duration must be 1 to 3600 seconds, e.g. duration = 60",
        )
    kind_name = _text(where, table, "kind", f"{field}.kind", "exercise")
    if kind_name not in _STEP_KINDS:
        raise where.error(
            f"{field}.kind", f"unknown kind {kind_name!r}", 'Use "exercise" or "rest"'
        )
    switch = table.get("switch_side", False)
    if not isinstance(switch, bool):
        raise where.error(
            f"{field}.switch_side", "must be true or false", "e.g. switch_side = true"
        )
    tip = _text(where, table, "tip", f"{field}.tip", "")
    return Step(name, duration, _STEP_KINDS[kind_name], tip, switch)


def _patterns(where: _Where, table: Any) -> tuple[fp.Pattern, ...]:
    if not isinstance(table, dict):
        raise where.error("patterns", "must be a table", "e.g. [patterns.countdown]")
    chosen = {p.cue: p for p in fp.DEFAULT_PATTERNS}
    for cue_name, spec in table.items():
        field = f"patterns.{cue_name}"
        if cue_name not in _CUE_NAMES:
            close = difflib.get_close_matches(cue_name, list(_CUE_NAMES), n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Use one of {', '.join(_CUE_NAMES)}"
            raise where.error(field, "unknown cue", hint)
        if not isinstance(spec, dict):
            raise where.error(field, "must be a table", "e.g. pulses = [[120, 0]]")
        where.check_keys(spec, _PATTERN_KEYS, f"{field}.")
        intensity = spec.get("intensity", 255)
        pulses = spec.get("pulses")
        if not isinstance(intensity, int) or not 0 <= intensity <= 255:
            raise where.error(f"{field}.intensity", "must be 0 to 255", "e.g. intensity = 200")
        if (
            not isinstance(pulses, list)
            or not 1 <= len(pulses) <= 32
            or not all(
                isinstance(p, list)
                and len(p) == 2
                and all(isinstance(x, int) and 0 <= x <= 65535 for x in p)
                for p in pulses
            )
        ):
            raise where.error(
                f"{field}.pulses",
                "must be 1 to 32 [on_ms, off_ms] pairs",
                "e.g. pulses = [[150, 120], [150, 0]]",
            )
        cue = _CUE_NAMES[cue_name]
        chosen[cue] = fp.Pattern(cue, intensity, tuple(fp.Pulse(on, off) for on, off in pulses))
    return tuple(chosen.values())


def parse_plan(data: Mapping[str, Any], source: str = "<plan>") -> Plan:
    """Validate a plan given as TOML-like data; ``source`` names it in errors."""
    where = _Where(source)
    where.check_keys(data, _PLAN_KEYS, "")
    name = _text(where, data, "name", "name", None).strip()
    if not name:
        raise where.error("name", "is empty", 'Give the plan a short name, e.g. name = "back-5"')
    steps_data = data.get("steps")
    if not isinstance(steps_data, list) or not steps_data:
        raise where.error("steps", "no steps", "Add at least one [[steps]] table")
    steps = tuple(_step(where, i, table) for i, table in enumerate(steps_data))
    rounds = data.get("rounds", 1)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
        raise where.error("rounds", f"must be 1 to {MAX_ROUNDS}, got {rounds!r}", "e.g. rounds = 3")
    rest = _number(where, data, "round_rest", "round_rest", 0)
    if not 0 <= rest <= 3600:
        raise where.error("round_rest", "must be 0 to 3600 seconds", "e.g. round_rest = 30")
    countdown = data.get("countdown", 3)
    if isinstance(countdown, bool) or not isinstance(countdown, int) or not 0 <= countdown <= 5:
        raise where.error("countdown", "must be 0 to 5 beeps", "e.g. countdown = 3")
    notes = data.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise where.error("notes", "must be a list of text", 'e.g. notes = ["Stop if in pain"]')
    patterns = _patterns(where, data["patterns"]) if "patterns" in data else fp.DEFAULT_PATTERNS
    return Plan(
        name=name,
        title=_text(where, data, "title", "title", name),
        steps=steps,
        rounds=rounds,
        round_rest_s=rest,
        countdown=countdown,
        patterns=patterns,
        notes=tuple(notes),
    )


def load_plan(path: str | Path) -> Plan:
    """Load and validate a TOML plan file."""
    path = Path(path)
    data = read_toml(path, "the plan file", PlanError, hint=". See docs/plans.md")
    return parse_plan(data, str(path))


def _builtin_names() -> tuple[str, ...]:
    folder = resources.files("companion") / "plans"
    return tuple(
        sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))
    )


BUILTIN_PLANS: Final = _builtin_names()


def builtin_plan(name: str, rounds: int | None = None) -> Plan:
    """A built-in plan by name (``"back-5"``), optionally with another number of rounds."""
    if name not in BUILTIN_PLANS:
        raise PlanError(
            f"no built-in plan {name!r}; built-in plans: {', '.join(BUILTIN_PLANS)} "
            "(or give the path of a TOML file)"
        )
    text = (resources.files("companion") / "plans" / f"{name}.toml").read_text(encoding="utf-8")
    plan = parse_plan(tomllib.loads(text), f"built-in plan {name}")
    return plan.with_rounds(rounds) if rounds is not None else plan


def resolve_plan(name_or_path: str, rounds: int | None = None) -> Plan:
    """A built-in name, a TOML path or a FIT workout file, as typed on the command line."""
    if name_or_path in BUILTIN_PLANS:
        return builtin_plan(name_or_path, rounds)
    path = Path(name_or_path)
    if path.suffix.lower() == ".fit":
        from .fit import load_fit_plan  # the optional 'fit' extra, imported only when used

        plan = load_fit_plan(path)
        return plan.with_rounds(rounds) if rounds is not None else plan
    if path.suffix == ".toml" or path.exists():
        plan = load_plan(path)
        return plan.with_rounds(rounds) if rounds is not None else plan
    raise PlanError(
        f"{name_or_path!r} is neither a built-in plan ({', '.join(BUILTIN_PLANS)}) nor a "
        "TOML file; list them with `companion plans`"
    )


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, plus DEL, which TOML wants escaped."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def plan_to_toml(plan: Plan) -> str:
    """A plan as a TOML plan file (docs/plans.md) that :func:`load_plan` reads back equal."""
    lines = [
        f"name = {_toml_string(plan.name)}",
        f"title = {_toml_string(plan.title)}",
        f"rounds = {plan.rounds}",
        f"round_rest = {_toml_number(plan.round_rest_s)}",
        f"countdown = {plan.countdown}",
        f"notes = [{', '.join(_toml_string(n) for n in plan.notes)}]",
    ]
    for step in plan.steps:
        lines += ["", "[[steps]]", f"name = {_toml_string(step.name)}"]
        lines.append(f"duration = {_toml_number(step.duration_s)}")
        if step.kind is not fp.StepKind.EXERCISE:
            lines.append('kind = "rest"')
        if step.switch_side:
            lines.append("switch_side = true")
        if step.tip:
            lines.append(f"tip = {_toml_string(step.tip)}")
    defaults = {p.cue: p for p in fp.DEFAULT_PATTERNS}
    for pattern in plan.patterns:
        if defaults.get(pattern.cue) != pattern:
            pulses = ", ".join(f"[{p.on_ms}, {p.off_ms}]" for p in pattern.pulses)
            lines += [
                "",
                f"[patterns.{pattern.cue.name.lower()}]",
                f"intensity = {pattern.intensity}",
                f"pulses = [{pulses}]",
            ]
    return "\n".join(lines) + "\n"
