"""Every example runs to completion against the virtual band, and says what it promises."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

from companion.mqtt import Topics, discovery_payload
from companion.state import DeviceInfo

EXAMPLES = Path(__file__).parent.parent / "examples"


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_pair_and_run_prints_the_whole_back_workout() -> None:
    output = _run(str(EXAMPLES / "pair_and_run.py"), "--sim", "--speed", "60")
    assert "connected to Companion" in output
    for step in ("QL lifts", "Hip roll", "Cat scratch", "Superman", "Crunches"):
        assert f": {step} (60 s)" in output
    assert "cue switch side" in output
    assert output.rstrip().endswith(": done")
    # Real milliseconds at 60x: a few ms each (60 times that before), so no false "late".
    assert output.count("60x") == 1
    errors = [
        abs(float(ms)) for ms in re.findall(r"^\s*\d+\s+cue .*\(([-+\d.]+) ms\)$", output, re.M)
    ]
    assert len(errors) > 20
    assert statistics.median(errors) < 10.0
    assert output.count("warning: cue") <= 2  # one slow moment of a loaded machine, at most


def test_minute_cues_plays_its_own_patterns_at_each_minute() -> None:
    output = _run(str(EXAMPLES / "minute_cues.py"), "--speed", "60")
    assert "Three one-minute moves: done" in output
    played = re.findall(r"^\s+([\d.]+) s\s+(\w+)\s+(\d+) ms$", output, re.MULTILINE)
    nexts = [(float(at), int(ms)) for at, kind, ms in played if kind == "next_exercise"]
    assert len(nexts) == 6  # three steps, two rounds
    assert {ms for _, ms in nexts} == {1000}  # the plan's long-long pattern, not the default
    assert [round(at) for at, _ in nexts[:3]] == [0, 60, 120]
    assert sum(kind == "switch_side" for _, kind, _ in played) == 2


def test_every_entity_the_home_assistant_examples_use_is_one_discovery_creates() -> None:
    device = DeviceInfo(band_id="SIM0001", name="Companion", address="F0:47:60:F3:9B:72")
    announced = discovery_payload(device, Topics.for_band("SIM0001")).decode()
    entities = set(re.findall(r'"(\w+\.companion_SIM0001_\w+)"', announced))
    used: set[str] = set()
    for name in ("automations.yaml", "dashboard-card.yaml"):
        text = (EXAMPLES / "home_assistant" / name).read_text()
        used |= set(re.findall(r"\b(?:sensor|binary_sensor|button)\.companion_sim0001_\w+", text))
    assert used
    assert used <= {entity.lower() for entity in entities}
