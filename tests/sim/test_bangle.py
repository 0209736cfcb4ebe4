"""The Bangle.js emulator (stock Android Integration app), driven with plain bleak code."""

from __future__ import annotations

import asyncio
import json

import pytest
from bleak import BleakClient, BleakScanner

from companion.kinds import gatt as kg
from companion.sim import BangleConfig, MotorSource, VirtualWorld

pytestmark = pytest.mark.looptime


class Console:
    """What the watch prints, as a host reads it: notifications joined into lines."""

    def __init__(self) -> None:
        self.text = ""
        self.notifications: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.notifications.append(data)
        self.text += data.decode()

    def json_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.text.split("\r\n") if line.startswith("{")]


async def _write(client: BleakClient, text: str) -> None:
    data = text.encode()
    for offset in range(0, len(data), 20):
        await client.write_gatt_char(kg.UART_RX_UUID, data[offset : offset + 20], response=True)


async def test_name_is_advertised_and_the_uart_uuid_is_in_the_scan_response() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_bangle()
        heard = await BleakScanner.discover(
            timeout=1, return_adv=True, backend=world.backend.scanner
        )
        _device, adv = heard[watch.address]
        assert adv.local_name == watch.name
        assert watch.name.startswith("Bangle.js ")
        assert len(watch.name) == len("Bangle.js abcd")
        assert adv.service_uuids == [kg.UART_SERVICE_UUID]


async def test_gb_and_buzz_lines_split_across_writes_drive_the_app_and_the_motor() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_bangle()
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            await _write(client, " \x03")
            await _write(client, "\x10Bangle.buzz(200,0.8)\n")
            await _write(client, '\x10GB({"t":"notify","id":1,"title":"Superman","body":"next"})\n')
            await _write(client, "\x10setTime(1764628800);E.setTimeZone(1)\n")
            await asyncio.sleep(1)
        assert [(p.duration_ms, p.strength, p.source) for p in watch.motor] == [
            (200, 0.8, MotorSource.BUZZ),
            (100, 0.25, MotorSource.NOTIFICATION),
            (100, 0.25, MotorSource.NOTIFICATION),
        ]
        assert [m.data.get("title") for m in watch.messages] == ["Superman"]
        assert watch.time_set == 1764628800
        assert watch.timezone == 1
        assert watch.ignored == []
        assert watch.echoed == 1  # only the " " before Ctrl-C: every line began with \x10


async def test_act_with_hrm_answers_heart_rate_every_second_in_split_lines() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_bangle()
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            console = Console()
            await client.start_notify(kg.UART_TX_UUID, lambda _c, d: console.feed(bytes(d)))
            await _write(client, '\x10GB({t:"act",hrm:true,int:1})\n')
            await asyncio.sleep(8.5)
        acts = [m for m in console.json_lines() if m["t"] == "act"]
        assert len(acts) == 8
        assert acts[0]["hrm"] == 0  # no reading yet
        assert all(isinstance(a["hrm"], int) and a["hrm"] > 60 for a in acts[4:])
        assert any(m["t"] == "status" for m in console.json_lines())
        assert max(len(n) for n in console.notifications) <= 20
        assert any(not n.endswith(b"\n") and b"{" in n for n in console.notifications)


async def test_a_line_without_echo_off_is_echoed_and_unknown_input_is_logged_and_ignored() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_bangle()
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            console = Console()
            await client.start_notify(kg.UART_TX_UUID, lambda _c, d: console.feed(bytes(d)))
            await _write(client, "Bangle.buzz(100)\n")
            await _write(client, '\x10GB({"t":"weather","temp":280})\n')
            await _write(client, "\x10load()\n")
            await asyncio.sleep(0.5)
        assert console.text.startswith("Bangle.buzz(100)\r\n=undefined\r\n>")
        assert [p.duration_ms for p in watch.motor] == [100]
        assert watch.ignored == ['{"t": "weather", "temp": 280}', "load()"]


async def test_buzz_longer_than_five_seconds_is_refused() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_bangle(BangleConfig(quiet=True))
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            await _write(client, "\x10Bangle.buzz(6000,1)\n")
            await _write(client, '\x10GB({"t":"notify","id":2,"title":"x"})\n')
            await asyncio.sleep(0.5)
        assert watch.motor == []  # quiet mode silences messages, and 6 s is too long
