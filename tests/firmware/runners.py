"""The band firmware implementations the vector cases run against, each in its own runtime.

- ``micropython``: ``firmware/micropython`` under the real MicroPython interpreter (the
  WebAssembly port, run by node);
- ``micropython-on-cpython``: the same files under CPython (how the virtual band runs them);
- ``banglejs``: the Bangle.js app's protocol core under node.

Node packages are installed into ``.firmware-tools/`` at the repository root (scripts/test.sh
does it; so does :func:`node_tools` when the folder is missing).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .cases import Case

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MICROPYTHON_DIR = ROOT / "firmware" / "micropython"
BANGLEJS_DIR = ROOT / "firmware" / "banglejs"
TOOLS = ROOT / ".firmware-tools"
MICROPYTHON_MJS = (
    TOOLS / "node_modules" / "@micropython" / "micropython-webassembly-pyscript" / "micropython.mjs"
)


def node_tools() -> Path:
    """The node_modules folder, installed from tests/firmware/package.json if missing."""
    if not MICROPYTHON_MJS.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to run the firmware tests: install node 20")
        TOOLS.mkdir(exist_ok=True)
        shutil.copy(HERE / "package.json", TOOLS / "package.json")
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=TOOLS, check=True
        )
    return TOOLS / "node_modules"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is needed to run the firmware tests: install node 20")
    return node


def _by_id(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {result["id"]: result for result in results}


def _run_node(args: list[str], cases: list[Case]) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.json"
        path.write_text(json.dumps([c.wire() for c in cases]), encoding="utf-8")
        done = subprocess.run(
            [_node(), *args, str(path)], capture_output=True, text=True, timeout=300, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"the runner failed ({done.returncode}): {done.stderr[-2000:]}")
    return _by_id(json.loads(done.stdout))


def run_micropython(cases: list[Case]) -> dict[str, dict[str, Any]]:
    node_tools()
    args = [str(HERE / "run_micropython.mjs"), str(MICROPYTHON_MJS), str(MICROPYTHON_DIR)]
    return _run_node(args, cases)


def run_micropython_on_cpython(cases: list[Case]) -> dict[str, dict[str, Any]]:
    sys.path.insert(0, str(MICROPYTHON_DIR))
    sys.path.insert(0, str(HERE))
    try:
        import mp_runner  # type: ignore[import-not-found]

        return _by_id(mp_runner.run([c.wire() for c in cases]))
    finally:
        sys.path.remove(str(HERE))
        sys.path.remove(str(MICROPYTHON_DIR))


def run_banglejs(cases: list[Case]) -> dict[str, dict[str, Any]]:
    return _run_node([str(HERE / "banglejs_runner.js"), str(BANGLEJS_DIR)], cases)


RUNNERS = {
    "micropython": run_micropython,
    "micropython-on-cpython": run_micropython_on_cpython,
    "banglejs": run_banglejs,
}
