"""``firmware_protocol`` is sans-I/O: importing it, in a fresh interpreter, loads no I/O library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IO_MODULES = ("asyncio", "bleak", "bumble", "aiomqtt", "amqtt", "socket", "ssl", "rich", "sqlite3")


def _loaded_after(statement: str) -> dict[str, list[str]]:
    probe = (
        "import json, sys\n"
        f"{statement}\n"
        f"io = [name for name in {IO_MODULES!r} if name in sys.modules]\n"
        "print(json.dumps({'io': io, 'protocol': sorted(n for n in sys.modules "
        "if n.startswith('firmware_protocol'))}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded: dict[str, list[str]] = json.loads(result.stdout)
    return loaded


def test_fresh_interpreter_without_the_package_loads_no_io_library() -> None:
    # The control: if the bare interpreter already loaded one, the next test would prove nothing.
    assert _loaded_after("pass")["io"] == []


@pytest.mark.parametrize(
    "statement", ["import firmware_protocol", "from firmware_protocol import *"]
)
def test_importing_firmware_protocol_loads_no_io_library(statement: str) -> None:
    loaded = _loaded_after(statement)
    assert "firmware_protocol.frames" in loaded["protocol"]  # the codec really was imported
    assert loaded["io"] == []
