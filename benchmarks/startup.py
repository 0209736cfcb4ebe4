"""Start-up: from launching ``companion run --sim`` to the first cue on its stdout.

Run from the repository root::

    python benchmarks/startup.py           # about 15 s
    python benchmarks/startup.py --quick   # under 10 s

Three timings, each repeated and reported as the median (min and max too):

- ``first_cue_s``: ``python -m companion run --sim --no-mqtt --speed 1`` is
  launched with stdout piped (so the live view prints one plain line per
  event) and ``COMPANION_DATA_DIR`` in a fresh temp dir; the clock stops when
  the first line starting with ``cue `` arrives. That line is the band's
  acknowledgement of the first cue of back-5 ("cue next exercise (+x ms)"),
  which the band fires at the workout's start, ``Band.start``'s lead of 0.5 s
  after the START command: that 0.5 s is by design and is inside the figure.
  The process is killed as soon as the line is seen. The lines before it are
  timed too, to show where the time goes: "connecting..." (imports done, the
  CLI running) and "session ... started" (band connected, paired, plan pushed,
  START acknowledged).
- ``import_s``: ``python -c "import companion.cli"`` (the whole process).
- ``python_s``: ``python -c pass``, the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_ROOT: Final = Path(__file__).resolve().parent.parent
_TIMEOUT_S: Final = 20.0


@dataclass
class Launch:
    connecting_s: float
    started_s: float
    first_cue_s: float
    cue_line: str


def _env(data_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env["COMPANION_DATA_DIR"] = data_dir
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["COLUMNS"] = "200"  # plain lines unwrapped
    return env


def _launch_once() -> Launch:
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as data_dir:
        command = [sys.executable, "-m", "companion", "run", "--sim", "--no-mqtt", "--speed", "1"]
        began = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=_ROOT,
            env=_env(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        watchdog = threading.Timer(_TIMEOUT_S, process.kill)  # a hang ends the read below
        watchdog.start()
        connecting = started = cue = float("nan")
        cue_line = ""
        try:
            while True:
                raw = process.stdout.readline()
                now = time.perf_counter() - began
                if not raw:
                    raise RuntimeError(f"companion exited ({process.wait()}) before a cue line")
                if now > _TIMEOUT_S:
                    raise RuntimeError(f"no cue line within {_TIMEOUT_S:g} s")
                line = raw.decode(errors="replace").strip()
                if line.startswith("connecting"):
                    connecting = now
                elif line.startswith("session ") and " started" in line:
                    started = now
                elif line.startswith("cue "):
                    cue, cue_line = now, line
                    break
        finally:
            watchdog.cancel()
            process.kill()
            process.wait()
        return Launch(connecting, started, cue, cue_line)


def _time_command(args: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(args, cwd=_ROOT, env=_env(tempfile.gettempdir()), check=True)
    return time.perf_counter() - began


def _summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run under 10 s")
    parser.add_argument("--repeat", type=int, help="launches of companion (default 7, quick 2)")
    args = parser.parse_args()
    launches = args.repeat or (2 if args.quick else 7)
    light = 3 if args.quick else 7

    # One untimed launch first: byte-compiles anything stale, warms the page cache.
    _time_command([sys.executable, "-c", "import companion.cli"])
    python = [_time_command([sys.executable, "-c", "pass"]) for _ in range(light)]
    imports = [_time_command([sys.executable, "-c", "import companion.cli"]) for _ in range(light)]
    runs = [_launch_once() for _ in range(launches)]

    rows = [
        ("python -c pass", _summary(python)),
        ("python -c 'import companion.cli'", _summary(imports)),
        ("run: 'connecting...' printed", _summary([r.connecting_s for r in runs])),
        ("run: 'session ... started' printed", _summary([r.started_s for r in runs])),
        ("run: first cue line (first_cue_s)", _summary([r.first_cue_s for r in runs])),
    ]
    print(f"{'from launch to':<36} {'median s':>9} {'min s':>8} {'max s':>8}")
    for name, (median, low, high) in rows:
        print(f"{name:<36} {median:>9.3f} {low:>8.3f} {high:>8.3f}")
    print(f"first cue line: {runs[0].cue_line!r}; {launches} launches, {light} of the others")
    print(
        "(the band fires the first cue 0.5 s after START by design: Band.start's lead_s)",
    )
    first_cue = statistics.median(r.first_cue_s for r in runs)
    result = {
        "bench": "startup",
        "first_cue_s": round(first_cue, 3),
        "import_s": round(statistics.median(imports), 3),
        "python_s": round(statistics.median(python), 3),
        "connecting_s": round(statistics.median(r.connecting_s for r in runs), 3),
        "session_started_s": round(statistics.median(r.started_s for r in runs), 3),
        "launches": launches,
        "quick": args.quick,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
