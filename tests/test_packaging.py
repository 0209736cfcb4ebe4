"""What each install gives: firmware_protocol alone, companion's core, and each extra's absence.

A firmware author installs the codec and its golden vectors with construct and
nothing else; the core of companion imports no library of an extra; an extra
that is missing says which one to install, and the CLI says it in one line.
Absence is simulated in a subprocess by a finder that reports the libraries as
not installed, exactly as Python reports a distribution that is not there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Filled by scripts/test.sh (the build backend and construct, as wheels): a test reaches
# no package index, so the fresh venv below installs from this folder alone.
WHEELS = ROOT / ".test-wheels"
EXTRA_LIBRARIES = ("bumble", "aiomqtt", "amqtt", "matplotlib")
HOST_STACK = ("bleak", "bleak_retry_connector", "bumble", "aiomqtt", "amqtt", "paho", "rich")

MISSING = (
    "the MQTT relay needs the mqtt extra: pip install 'companion[mqtt]'",
    "the virtual band needs the sim extra: pip install 'companion[sim]'",
    "the report's chart needs the report extra: pip install 'companion[report]'",
)
MQTT_MISSING, SIM_MISSING, REPORT_MISSING = MISSING


def _blocker(*libraries: str) -> str:
    """Python source that makes ``libraries`` (and their submodules) not installed."""
    return textwrap.dedent(
        f"""
        import sys

        class NotInstalled:
            names = frozenset({sorted(libraries)!r})

            @classmethod
            def find_spec(cls, name, path=None, target=None):
                if name.partition(".")[0] in cls.names:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, NotInstalled)
        """
    )


def _python(code: str, *, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # Wide enough that rich never wraps an error line: what a user sees is one line.
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
        timeout=60,
    )


# -- firmware_protocol on its own ------------------------------------------------------------

_ALONE_CHECK = """
import importlib.metadata, importlib.resources, importlib.util, json, sys
import firmware_protocol as fp

vectors = importlib.resources.files("firmware_protocol.vectors")
messages = json.loads((vectors / "messages.json").read_text(encoding="utf-8"))
for vector in messages["vectors"]:
    frame = fp.decode_frame(bytes.fromhex(vector["frame"]))
    assert fp.encode_frame(frame.message, frame.seq, frame.flags).hex() == vector["frame"]
print(json.dumps({
    "file": fp.__file__,
    "vector_files": sorted(p.name for p in vectors.iterdir() if p.name.endswith(".json")),
    "messages_checked": len(messages["vectors"]),
    "protocol_doc": (vectors / "PROTOCOL.md").is_file(),
    "generator_shipped": importlib.util.find_spec("firmware_protocol.vectors.generate") is not None,
    "loaded": sorted({name.partition(".")[0] for name in sys.modules} & set(sys.argv[1:])),
    "distributions": sorted(d.metadata["Name"] for d in importlib.metadata.distributions()),
    "requires": importlib.metadata.requires("companion-firmware-protocol"),
}))
"""


def test_firmware_protocol_installs_alone_in_a_fresh_venv_with_construct_only(
    tmp_path: Path,
) -> None:
    if not any(WHEELS.glob("setuptools-*.whl")) or not any(WHEELS.glob("construct-*.whl")):
        message = f"{WHEELS.name}/ lacks the wheels the offline install needs: run scripts/test.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # A copy, so the build folder setuptools leaves beside the sources stays out of the clone.
    source = tmp_path / "firmware_protocol"
    shutil.copytree(
        ROOT / "firmware_protocol",
        source,
        ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    # No configuration file and no PIP_* variable: the wheels folder is the only source.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    pip = [sys.executable, "-m", "pip", "--python", python]
    install = subprocess.run(
        [*pip, "install", "-q", "--no-index", "--find-links", WHEELS, source],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    forbidden = (*HOST_STACK, "matplotlib", "companion", "asyncio")
    check = subprocess.run(
        [python, "-I", "-c", _ALONE_CHECK, *forbidden],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    found = json.loads(check.stdout)

    assert Path(found["file"]).is_relative_to(venv)  # the installed copy, not the clone
    assert found["loaded"] == []
    assert found["distributions"] == ["companion-firmware-protocol", "construct"]
    assert [r.partition(">")[0] for r in found["requires"]] == ["construct"]
    assert found["vector_files"] == ["frames.json", "hrs.json", "messages.json", "plan.json"]
    assert found["messages_checked"] > 10
    assert found["protocol_doc"]
    assert not found["generator_shipped"]


def test_the_vector_generator_is_not_in_the_runtime_package() -> None:
    assert not (ROOT / "firmware_protocol" / "vectors" / "generate.py").exists()
    assert (ROOT / "scripts" / "generate_vectors.py").is_file()


# -- companion's core ------------------------------------------------------------------------


def test_import_companion_and_its_cli_load_no_library_of_an_extra() -> None:
    code = (
        "import sys, companion, companion.cli\n"
        f"print(sorted({{n.partition('.')[0] for n in sys.modules}} & {set(EXTRA_LIBRARIES)!r}))"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_help_works_with_every_extra_missing() -> None:
    code = _blocker(*EXTRA_LIBRARIES) + (
        "from companion.cli import main\nmain(['--help'], prog_name='companion')\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert "Guide a workout on a BLE fitness band" in result.stdout
    commands = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert {"run", "sim", "monitor", "report"} <= commands


# -- each extra's absence --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("library", "module", "message"),
    [
        ("bumble", "companion.sim", SIM_MISSING),
        ("aiomqtt", "companion.mqtt", MQTT_MISSING),
        ("amqtt", "companion.mqtt", MQTT_MISSING),
    ],
)
def test_importing_an_extras_package_without_its_library_names_the_extra(
    library: str, module: str, message: str
) -> None:
    code = _blocker(library) + textwrap.dedent(
        f"""
        try:
            import {module}
        except ImportError as exc:
            print(type(exc).__name__, exc.name, exc, sep="|")
        """
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"MissingExtraError|{library}|{message}"


def test_drawing_a_report_without_matplotlib_names_the_report_extra(tmp_path: Path) -> None:
    code = _blocker("matplotlib") + textwrap.dedent(
        f"""
        from companion import Store
        from companion.report import write_report
        from tests.test_report import _session_without_heart_rate

        with Store({str(tmp_path / "history.db")!r}) as store:
            session_id = _session_without_heart_rate(store)
            try:
                write_report(store, session_id, {str(tmp_path / "r.png")!r})
            except ImportError as exc:
                print(type(exc).__name__, exc, sep="|")
        """
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"MissingExtraError|{REPORT_MISSING}"
    assert not (tmp_path / "r.png").exists()


# -- the CLI without an extra: one line with the fix -------------------------------------------


def _cli(missing: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    code = _blocker(*missing) + (
        f"from companion.cli import main\nmain({list(args)!r}, prog_name='companion')\n"
    )
    return _python(code)


def test_run_without_the_mqtt_extra_says_to_install_it_or_pass_no_mqtt(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    result = _cli(("aiomqtt", "amqtt"), "run", "--sim", "--speed", "10", "--db", str(db))
    assert result.returncode == 1
    assert result.stderr == f"error: {MQTT_MISSING}, or pass --no-mqtt\n"
    assert not db.exists()  # it failed before anything started


def test_run_on_a_virtual_band_without_the_sim_extra_says_which_extra(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    result = _cli(("bumble",), "run", "--sim", "--no-mqtt", "--db", str(db))
    assert result.returncode == 1
    assert result.stderr == f"error: {SIM_MISSING}\n"


def test_sim_without_the_sim_extra_says_which_extra() -> None:
    result = _cli(("bumble",), "sim", "--port", "0")
    assert result.returncode == 1
    assert result.stderr == f"error: {SIM_MISSING}\n"


def test_monitor_without_the_mqtt_extra_says_which_extra() -> None:
    result = _cli(("aiomqtt",), "monitor", "--mqtt", "mqtt://127.0.0.1:1")
    assert result.returncode == 1
    assert result.stderr == f"error: {MQTT_MISSING}\n"


def test_report_without_the_report_extra_says_which_extra(tmp_path: Path) -> None:
    from companion import Store
    from tests.test_report import _session_without_heart_rate

    db = tmp_path / "history.db"
    with Store(db) as store:
        session_id = _session_without_heart_rate(store)
    target = tmp_path / "r.html"
    result = _cli(("matplotlib",), "report", session_id, "--db", str(db), "-o", str(target))
    assert result.returncode == 1
    assert result.stderr == f"error: {REPORT_MISSING}\n"
    assert not target.exists()
