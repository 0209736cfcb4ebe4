"""Every benchmark runs with --quick and ends with its one JSON line (what its reader parses).

The figures are not checked here (a machine's load moves them; the README has them
with their commands): only that each script runs and says what it measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))


def test_there_are_benchmarks_to_run() -> None:
    assert {b.stem for b in BENCHMARKS} >= {"class", "codec", "cues", "host_timed", "relay"}


@pytest.mark.parametrize("script", BENCHMARKS, ids=[b.stem for b in BENCHMARKS])
def test_a_quick_benchmark_ends_with_one_json_line_naming_itself(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=script.parent.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    figures = json.loads(last)
    assert figures["bench"] == script.stem
