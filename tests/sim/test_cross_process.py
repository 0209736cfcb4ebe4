"""A virtual band served by another process (``python -m companion.sim``), reached over TCP.

The server runs with every warning an error, so a leaked socket or timer on
its side shows up on its stderr, which the fixture checks after SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from companion.band import Band
from companion.errors import CompanionError
from companion.events import CueFired
from companion.plan import Plan, Step
from companion.sim.remote import remote_backend
from firmware_protocol import gatt
from tests.lines import OutputLines

_READY_TIMEOUT_S = 10.0
_CRASHED_HOST = """
import asyncio, os, sys
from bleak import BleakClient
from companion.sim.remote import remote_backend

async def hold(url, address):
    client = BleakClient(address, backend=remote_backend(url).client)
    await client.connect()
    print("connected", flush=True)
    os._exit(0)  # no disconnect, no close: as if the host crashed

asyncio.run(hold(sys.argv[1], sys.argv[2]))
"""


@dataclass(frozen=True)
class Server:
    url: str
    address: str  # the first band's
    name: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _serving() -> Iterator[Server]:
    """``python -m companion.sim`` in a subprocess; on exit, SIGTERM and a clean stderr."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-W",
            "error",
            "-m",
            "companion.sim",
            "--port",
            str(port),
            "--auto-confirm",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = OutputLines(process)
        line = lines.next(_READY_TIMEOUT_S)
        ready = re.search(r"(sim://\S+) \((\S+) ([0-9A-F:]{17})\)", line)
        assert ready is not None, f"unexpected ready line {line!r}"
        assert ready[1] == f"sim://127.0.0.1:{port}"
        yield Server(url=ready[1], name=ready[2], address=ready[3])
    finally:
        process.terminate()
        lines.rest(timeout=10)  # stdout, read by its thread, until the server exits
        assert process.stderr is not None
        with process.stderr:
            err = process.stderr.read()
    assert process.returncode == 0, err
    assert err == "", err


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with _serving() as serving:
        yield serving


async def _first_cue(band: Band) -> CueFired:
    async for event in band.events():
        if isinstance(event, CueFired):
            return event
    raise AssertionError("the band's event stream ended without a cue")


async def test_a_scan_finds_the_band_another_process_serves(server: Server) -> None:
    found = await BleakScanner.discover(
        timeout=0.5, return_adv=True, backend=remote_backend(server.url).scanner
    )
    _device, adv = found[server.address]
    assert adv.local_name == server.name
    assert gatt.COMPANION_SERVICE_UUID in adv.service_uuids


async def test_plain_bleak_reads_device_information_across_processes(server: Server) -> None:
    backend = remote_backend(server.url)
    async with BleakClient(server.address, backend=backend.client) as client:
        assert await client.read_gatt_char(gatt.MANUFACTURER_NAME_UUID) == b"Companion Project"
        assert await client.read_gatt_char(gatt.SERIAL_NUMBER_UUID) == b"SIM0001"
        assert client.mtu_size == 247
    assert not client.is_connected


async def test_a_band_in_another_process_fires_the_first_cue_of_a_pushed_plan(
    server: Server,
) -> None:
    plan = Plan("x", "cross-process", (Step("Hold", 0.2), Step("Rest", 0.2)), countdown=0)
    async with Band.connect(server.name, backend=remote_backend(server.url)) as band:
        assert band.info.serial == "SIM0001"
        assert await band.push_plan(plan) is True
        await band.start(lead_s=0.1)
        cue = await asyncio.wait_for(_first_cue(band), 5)
    assert cue.cue_id == 0
    assert abs(cue.error_ms) < 50


async def test_a_crashed_host_frees_the_band_for_the_next_one(server: Server) -> None:
    crashed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHED_HOST, server.url, server.address,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _err = await asyncio.wait_for(crashed.communicate(), _READY_TIMEOUT_S)
    assert out.decode().strip() == "connected"
    async with BleakClient(server.address, timeout=5, backend=remote_backend(server.url).client):
        pass


async def test_a_server_that_goes_away_drops_the_link_and_says_so_on_reconnect() -> None:
    dropped = asyncio.Event()
    with _serving() as serving:
        backend = remote_backend(serving.url)
        client = BleakClient(
            serving.address,
            disconnected_callback=lambda _c: dropped.set(),
            backend=backend.client,
        )
        await client.connect()
    await asyncio.wait_for(dropped.wait(), 5)
    assert not client.is_connected
    with pytest.raises(BleakError, match=r"no virtual band server at sim://"):
        await client.connect()


async def test_connecting_to_a_port_nobody_serves_says_how_to_start_a_server() -> None:
    with pytest.raises(CompanionError, match=r"companion sim --port"):
        async with Band.connect(
            "Companion", backend=remote_backend(f"sim://127.0.0.1:{_free_port()}")
        ):
            pass
