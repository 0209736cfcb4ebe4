"""The layout's one-way arrows, checked on the source: who may import what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# library -> the only places in the tree allowed to import it
ALLOWED = {
    "bleak": ("companion/ble/", "companion/sim/"),
    "bleak_retry_connector": ("companion/ble/",),
    "bumble": ("companion/sim/",),
    "aiomqtt": ("companion/mqtt/",),
    "amqtt": ("companion/mqtt/",),
    "paho": ("companion/mqtt/",),
    "rich": ("companion/cli.py", "companion/view.py", "companion/monitor.py"),
    "construct": ("firmware_protocol/frames.py", "firmware_protocol/hrs.py"),
    "fit_tool": ("companion/fit/_writer.py",),
    "fitdecode": ("companion/fit/workout.py",),
    "fitparse": (),  # a second reader for the tests only
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _sources() -> list[Path]:
    return sorted(
        p for package in ("companion", "firmware_protocol") for p in (ROOT / package).rglob("*.py")
    )


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_module_imports_third_party_edges_only_where_the_layout_allows(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    for library, places in ALLOWED.items():
        if library in _imports(path):
            assert relative.startswith(places), f"{relative} imports {library}; only {places} may"


@pytest.mark.parametrize(
    "path", [p for p in _sources() if "firmware_protocol" in p.parts], ids=lambda p: p.name
)
def test_firmware_protocol_never_imports_companion(path: Path) -> None:
    assert "companion" not in _imports(path)


@pytest.mark.parametrize(
    "path",
    [p for p in _sources() if p.parts[-2] == "companion" or "ble" in p.parts or "mqtt" in p.parts],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_library_code_never_prints(path: Path) -> None:
    if path.name in ("cli.py", "__main__.py"):
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert calls == [], f"{path.name} prints on lines {calls}: log instead"


def _companion_modules_imported(path: Path) -> set[str]:
    """Every ``companion.*`` module ``path`` imports, relative imports resolved."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("companion")}


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in _sources()
        if p.parts[-2:] != ("companion", "cli.py")
        and "sim" not in p.relative_to(ROOT).parts
        and "firmware_protocol" not in p.parts
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_core_never_imports_the_virtual_bands(path: Path) -> None:
    # Only the CLI reaches companion.sim, and only when the user asks for a virtual band.
    imported = _companion_modules_imported(path)
    assert not {m for m in imported if m == "companion.sim" or m.startswith("companion.sim.")}


@pytest.mark.parametrize(
    "path",
    [p for p in _sources() if "mqtt" in p.relative_to(ROOT).parts],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_mqtt_never_imports_the_session_the_view_or_rich(path: Path) -> None:
    # The relay is one subscriber of a session's events among others (store, view): it
    # follows a session through its Protocol and never draws.
    imported = _companion_modules_imported(path)
    forbidden = {
        "companion.session",
        "companion.group",
        "companion.view",
        "companion.monitor",
        "companion.cli",
    }
    assert not imported & forbidden, f"{path.name} imports {sorted(imported & forbidden)}"
    assert "rich" not in _imports(path)


def test_the_session_tracker_is_pure() -> None:
    # Like firmware_protocol: band events in, session events out, time as a parameter.
    path = ROOT / "companion" / "tracker.py"
    allowed = {"__future__", "collections", "dataclasses", "typing", "firmware_protocol"}
    assert _imports(path) <= allowed
    imported = _companion_modules_imported(path)
    assert {m.rsplit(".", 1)[0] if m.count(".") > 1 else m for m in imported} <= {
        "companion.events",
        "companion.plan",
        "companion.state",
    }
