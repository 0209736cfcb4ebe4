"""What a person sees when a file, a folder or an option is wrong: what, why, fix; no traceback."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import companion
import companion.errors
from companion.cli import main
from companion.mqtt import free_loopback_port
from companion.mqtt.outbox import Outbox
from companion.plan import MAX_ROUNDS, load_plan
from companion.store import Store
from tests.session.test_storage import small_disk

FAST = ["--sim", "--speed", "60", "--no-mqtt"]
ROOT = os.geteuid() == 0


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def said(result: Result) -> str:
    return " ".join(result.output.split())


def _tiny_plan(tmp_path: Path, name: str = "Plank", tip: str = "") -> Path:
    plan = tmp_path / "tiny.toml"
    plan.write_text(f'name = "tiny"\n[[steps]]\nname = "{name}"\nduration = 2\ntip = "{tip}"\n')
    return plan


# -- the data folder --------------------------------------------------------------------


def _run_with_data_dir(tmp_path: Path, data_dir: Path) -> Result:
    return invoke("run", _tiny_plan(tmp_path), *FAST, env={"COMPANION_DATA_DIR": str(data_dir)})


def _no_traceback(result: Result) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "damaged" not in result.output
    assert "Fix:" in result.output


def test_a_data_dir_whose_parent_is_missing_says_so_and_how_to_fix(tmp_path: Path) -> None:
    result = _run_with_data_dir(tmp_path, tmp_path / "no" / "such" / "data")
    _no_traceback(result)
    assert f"the folder {tmp_path / 'no' / 'such'} does not exist" in said(result)
    assert f"mkdir -p {tmp_path / 'no' / 'such'}" in said(result)
    assert not (tmp_path / "no").exists()


def test_a_data_dir_that_is_a_regular_file_says_so(tmp_path: Path) -> None:
    regular = tmp_path / "notes.txt"
    regular.write_text("mine")
    result = _run_with_data_dir(tmp_path, regular)
    _no_traceback(result)
    assert f"{regular} is a file, not a folder" in said(result)
    assert regular.read_text() == "mine"


@contextlib.contextmanager
def _read_only_mount() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", folder],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.decode().strip()}")
        try:
            yield Path(folder)
        finally:
            subprocess.run(["umount", "--lazy", folder], check=True)


@pytest.mark.skipif(not ROOT, reason="mounting a read-only file system needs root")
def test_a_data_dir_on_a_read_only_file_system_says_so(tmp_path: Path) -> None:
    with _read_only_mount() as mount:
        result = _run_with_data_dir(tmp_path, mount / "companion")
        _no_traceback(result)
        assert "is on a read-only file system" in said(result)
        shown = _run_with_data_dir(tmp_path, mount)  # the folder exists; the file cannot
        _no_traceback(shown)
        assert "is on a read-only file system" in said(shown)


@contextlib.contextmanager
def _unprivileged() -> Iterator[Path]:
    """A folder we may not write, as a user who cannot override its mode (root can)."""
    with tempfile.TemporaryDirectory() as parent:
        os.chmod(parent, 0o755)
        folder = Path(parent) / "data"
        folder.mkdir(mode=0o555)
        if not ROOT:
            yield folder
            return
        os.setegid(65534)
        os.seteuid(65534)
        try:
            yield folder
        finally:
            os.seteuid(0)
            os.setegid(0)


def test_a_read_only_data_dir_says_it_is_read_only_not_damaged() -> None:
    with _unprivileged() as folder:  # the history is opened before anything else is done
        result = invoke("run", "back-5", *FAST, env={"COMPANION_DATA_DIR": str(folder)})
    _no_traceback(result)
    assert f"you may not write the folder {folder} (read-only)" in said(result)
    assert f"chmod u+w {folder}" in said(result)


def test_a_disk_filling_up_mid_run_ends_it_as_stopped_storage_with_a_clear_error() -> None:
    # 1 MiB fills about a minute into the workout: each record is a 4 KiB WAL frame.
    with small_disk("1m") as disk:
        db = disk / "sessions.sqlite3"
        result = invoke("run", "back-5", *FAST, "--db", db)
        _no_traceback(result)
        assert "is full" in said(result)
        assert "the workout was stopped on the band (stopped: storage)" in said(result)
        assert re.search(r"outcome\W+stopped: storage", result.output)
        listed = invoke("history", "--db", db)
        assert listed.exit_code == 0
        assert "stopped:" in listed.output  # the outcome column wraps it
        assert "storage" in listed.output


def test_history_and_outbox_are_private_files_in_a_private_folder(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    with Store(folder / "sessions.sqlite3"), Outbox(folder / "outbox.sqlite3", "sim0001"):
        made = sorted(folder.iterdir())
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in made}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {"sessions.sqlite3", "sessions.sqlite3-wal", "outbox.sqlite3-wal"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


def test_a_real_run_keeps_its_data_folder_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = _run_with_data_dir(tmp_path, data)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not list(data.glob("*-reserve"))  # the room set aside for the end is given back


def test_history_of_a_missing_file_does_not_create_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite3"
    result = invoke("history", "--db", missing)
    assert result.exit_code == 1
    assert f"there is no session history at {missing}" in said(result)
    assert not missing.exists()
    assert not list(tmp_path.iterdir())


def test_history_with_nothing_recorded_yet_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = invoke("history", env={"COMPANION_DATA_DIR": str(data)})
    assert result.exit_code == 0
    assert "no sessions yet" in result.output
    assert not data.exists()


def test_report_from_a_missing_history_does_not_create_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite3"
    result = invoke("report", "abc", "--db", missing)
    assert result.exit_code == 1
    assert not missing.exists()


# -- rounds, options, advice -------------------------------------------------------------


def test_one_rounds_rule_for_the_option_the_plan_file_and_the_docs(tmp_path: Path) -> None:
    assert MAX_ROUNDS == 20
    docs = (Path(__file__).parents[2] / "docs" / "plans.md").read_text()
    assert f"1 to {MAX_ROUNDS}" in docs
    too_many = invoke("run", "--rounds", str(MAX_ROUNDS + 1), *FAST)
    assert too_many.exit_code == 2
    assert f"1<=x<={MAX_ROUNDS}" in said(too_many)
    ten = invoke("run", _tiny_plan(tmp_path), "--rounds", "10", *FAST, "--db", tmp_path / "s.db")
    assert ten.exit_code == 0, ten.output
    assert "tiny, 10 round(s)" in ten.output
    assert "workout done: 10 round(s)" in ten.output
    plan = tmp_path / "many.toml"
    plan.write_text(
        f'name = "many"\nrounds = {MAX_ROUNDS + 1}\n[[steps]]\nname = "P"\nduration = 2\n'
    )
    with pytest.raises(companion.PlanError, match=f"1 to {MAX_ROUNDS}"):
        load_plan(plan)
    plan.write_text(f'name = "many"\nrounds = {MAX_ROUNDS}\n[[steps]]\nname = "P"\nduration = 2\n')
    assert load_plan(plan).rounds == MAX_ROUNDS


@pytest.mark.parametrize("command", [("run",), ("pair",)])
def test_sim_and_a_band_together_say_they_conflict(command: tuple[str, ...]) -> None:
    band = ("--band", "AA:BB:CC:DD:EE:FF") if command == ("run",) else ("AA:BB:CC:DD:EE:FF",)
    result = invoke(*command, "--sim", *band)
    assert result.exit_code == 2
    assert "conflict" in said(result)
    assert "give only one of them" in said(result)


def test_ha_remove_advises_what_ha_remove_has(tmp_path: Path) -> None:
    port = free_loopback_port()
    result = invoke("ha-remove", "sim0001", "--mqtt", f"mqtt://127.0.0.1:{port}")
    assert result.exit_code == 1
    assert "--no-mqtt" not in result.output
    assert "--mqtt" in said(result)
    help_text = invoke("ha-remove", "--help").output
    for option in ("--no-mqtt",):
        assert option not in help_text


def test_the_errors_the_readme_lists_import_from_companion() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    listed = {
        name for name in companion.errors.__all__ if f"`{name}`" in readme or f".{name}`" in readme
    }
    assert {"BandNotFoundError", "PlanError", "StoreError", "CompanionError"} <= listed
    for name in companion.errors.__all__:
        assert getattr(companion, name) is getattr(companion.errors, name)
        assert name in companion.__all__


def test_errors_import_in_a_fresh_interpreter() -> None:
    code = "from companion import BandNotFoundError, LinkLostError, StoreError, PlanError"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- text in square brackets ---------------------------------------------------------------


def test_plans_shows_square_brackets_as_written(tmp_path: Path) -> None:
    plan = _tiny_plan(tmp_path, name="Plank [hold]", tip="Hold [b]still[/b] and [/] breathe")
    result = invoke("plans", plan)
    assert result.exit_code == 0, result.output
    assert "Plank [hold]" in result.output
    assert "Hold [b]still[/b] and [/] breathe" in said(result)


def test_an_error_message_with_square_brackets_is_shown_whole(tmp_path: Path) -> None:
    plan = tmp_path / "empty.toml"
    plan.write_text('name = "empty"\n')
    result = invoke("plans", plan)
    assert result.exit_code == 1
    assert "[[steps]]" in said(result)
