"""`companion install-app`: the Storage writes it sends rebuild every file of the app
exactly (run by node against a Storage stand-in), and --print says where the files are."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from companion.banglejs import APP_DIR, app_files, storage_commands
from companion.cli import main

# The watch's console, as far as these lines need it: Ctrl-C, echo-off lines, atob, Storage.
_CONSOLE = r"""
const lines = require("fs").readFileSync(0, "latin1").split("\n");
const files = {};
const Storage = { write(name, data, offset, size) {
  if (offset === 0) files[name] = Buffer.alloc(size);
  Buffer.from(data, "latin1").copy(files[name], offset);
  return true;
} };
const atob = (s) => Buffer.from(s, "base64").toString("latin1");
const require_ = (name) => { if (name !== "Storage") throw new Error(name); return Storage; };
let loaded = null;
for (let line of lines) {
  line = line.replace(/^\x03/, "");
  if (!line) continue;
  if (line[0] !== "\x10") throw new Error("echo is on for: " + line.slice(0, 40));
  new Function("require", "atob", "load", line.slice(1))(require_, atob, (n) => { loaded = n; });
}
const out = {};
for (const [name, data] of Object.entries(files)) out[name] = data.toString("hex");
process.stdout.write(JSON.stringify({ files: out, loaded }));
"""


def test_the_storage_writes_rebuild_every_file_and_start_the_app() -> None:
    files = [(name, path.read_bytes()) for name, path in app_files()]
    assert {name for name, _ in files} == {"companioncore", "companion.app.js"}
    big = ("big", bytes(range(256)) * 9)  # several chunks, every byte value
    stream = b"".join(storage_commands([*files, big], start="companion.app.js"))
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, "-e", _CONSOLE], input=stream, capture_output=True, check=True, timeout=60
    )
    answer = json.loads(done.stdout)
    assert answer["loaded"] == "companion.app.js"
    assert answer["files"] == {name: data.hex() for name, data in [*files, big]}


def test_install_app_print_says_where_the_files_are() -> None:
    result = CliRunner().invoke(main, ["install-app", "--print"], catch_exceptions=False)
    assert result.exit_code == 0
    assert str(APP_DIR) in result.output.replace("\n", "")
    assert "companioncore" in result.output


def test_install_app_without_a_band_asks_for_one() -> None:
    result = CliRunner().invoke(main, ["install-app"], catch_exceptions=False)
    assert result.exit_code != 0
    assert "--band" in result.output


def test_the_app_files_are_all_in_the_folder() -> None:
    for _name, path in app_files():
        assert path.parent == APP_DIR
        assert Path(path).exists()
