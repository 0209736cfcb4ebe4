"""The InfiniTime emulator, driven with plain bleak code through our backend."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError, BleakGATTProtocolError

from companion.kinds import gatt as kg
from companion.sim import (
    CallResponse,
    InfiniTimeConfig,
    MotorSource,
    VirtualWorld,
)
from firmware_protocol import gatt

pytestmark = pytest.mark.looptime


async def test_name_is_only_in_the_scan_response_and_the_advert_holds_hr_and_dfu() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_infinitime()
        heard = await BleakScanner.discover(
            timeout=1, return_adv=True, backend=world.backend.scanner
        )
        _device, adv = heard[watch.address]
        assert adv.local_name == "InfiniTime"
        assert set(adv.service_uuids) == {
            gatt.HEART_RATE_SERVICE_UUID,
            kg.INFINITIME_DFU_SERVICE_UUID,
        }
        assert b"InfiniTime" not in watch.advertising_data()
        assert b"InfiniTime" in watch.scan_response_data()
        passive = await BleakScanner.discover(
            timeout=1, return_adv=True, scanning_mode="passive", backend=world.backend.scanner
        )
        assert passive[watch.address][1].local_name is None


async def test_every_alert_level_write_buzzes_once_even_level_zero_and_requests_are_refused() -> (
    None
):
    async with VirtualWorld() as world:
        watch = await world.add_infinitime()
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            for level in (0, 1, 2):
                await client.write_gatt_char(gatt.ALERT_LEVEL_UUID, bytes([level]), response=False)
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.write_gatt_char(gatt.ALERT_LEVEL_UUID, b"\x01", response=True)
            assert refused.value.code == 0x03
            await asyncio.sleep(0.1)
        assert [(p.duration_ms, p.source) for p in watch.motor] == [
            (35, MotorSource.NOTIFICATION)
        ] * 3
        assert [n.title for n in watch.notifications] == [
            "Alert : None",
            "Alert : Mild",
            "Alert : High",
        ]


async def test_new_alert_of_three_bytes_is_ignored_and_text_is_cut_at_100() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_infinitime()
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            await client.write_gatt_char(kg.NEW_ALERT_UUID, b"\x00\x01\x00", response=True)
            await client.write_gatt_char(
                kg.NEW_ALERT_UUID, b"\x00\x01\x00Superman\0" + b"x" * 200, response=True
            )
        assert len(watch.notifications) == 1
        note = watch.notifications[0]
        assert note.title == "Superman"
        assert len(note.title) + 1 + len(note.body) == 99  # plus the terminator: 100
        assert len(watch.motor) == 1


async def test_a_call_rings_once_a_second_until_the_tap_which_comes_back_as_an_event() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_infinitime()
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            events: asyncio.Queue[bytes] = asyncio.Queue()
            await client.start_notify(
                kg.NOTIFICATION_EVENT_UUID, lambda _c, d: events.put_nowait(bytes(d))
            )
            t0 = watch.clock.now()
            await client.write_gatt_char(kg.NEW_ALERT_UUID, b"\x03\x01\x00Call\0me", response=True)
            await asyncio.sleep(2.5)
            watch.tap(CallResponse.ANSWER)
            assert await asyncio.wait_for(events.get(), 1) == b"\x01"
            await asyncio.sleep(5)
        assert [(round(p.t - t0, 1), p.duration_ms) for p in watch.motor] == [
            (0.0, 50),
            (1.0, 50),
            (2.0, 50),
        ]
        assert {p.source for p in watch.motor} == {MotorSource.CALL}


async def test_an_unanswered_call_stops_ringing_after_the_7_s_preview() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_infinitime()
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            await client.write_gatt_char(kg.NEW_ALERT_UUID, b"\x03\x01\x00Call\0", response=True)
            await asyncio.sleep(12)
        assert len(watch.motor) == 7
        assert not watch.ringing


async def test_heart_rate_is_flags_zero_notified_only_on_change_and_readable() -> None:
    script = [0, 0, 72, 72, 72, 72, 80, 80, 0, 81]

    def bpm(t: float) -> int:
        return script[min(round(t) - 1, len(script) - 1)]

    async with VirtualWorld() as world:
        watch = await world.add_infinitime(InfiniTimeConfig(heart_rate=bpm))
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            got: list[bytes] = []
            await client.start_notify(
                gatt.HEART_RATE_MEASUREMENT_UUID, lambda _c, d: got.append(bytes(d))
            )
            await asyncio.sleep(len(script) + 0.5)
            assert await client.read_gatt_char(gatt.HEART_RATE_MEASUREMENT_UUID) == b"\x00\x51"
        assert got == [b"\x00\x48", b"\x00\x50", b"\x00\x00", b"\x00\x51"]


async def test_current_time_needs_ten_bytes_and_local_time_is_kept() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_infinitime()
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.write_gatt_char(kg.CURRENT_TIME_UUID, bytes(9), response=True)
            assert refused.value.code == 0x0D
            when = bytes([0xEA, 0x07, 12, 1, 22, 30, 5, 2, 0, 0])
            await client.write_gatt_char(kg.CURRENT_TIME_UUID, when, response=True)
            await client.write_gatt_char(kg.LOCAL_TIME_UUID, b"\x04\x00", response=True)
            assert (await client.read_gatt_char(kg.CURRENT_TIME_UUID))[:7] == when[:7]
        assert watch.current_time is not None
        assert (watch.current_time.year, watch.current_time.hour) == (2026, 22)
        assert watch.local_time == (4, 0)
        assert watch.refused_time_writes == 1


async def test_music_length_is_declared_twice_so_it_must_be_addressed_by_handle() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_infinitime()
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            twice = [
                c
                for s in client.services
                for c in s.characteristics
                if c.uuid == kg.infinitime_uuid(0, 7)
            ]
            assert len(twice) == 2
            assert twice[0].handle != twice[1].handle
            with pytest.raises(BleakError):
                await client.read_gatt_char(kg.infinitime_uuid(0, 7))
            await client.write_gatt_char(twice[1], b"\x00\x00\x00\xb4", response=True)
            assert watch.music["length"] == b"\x00\x00\x00\xb4"
            software = await client.read_gatt_char(kg.SOFTWARE_REVISION_UUID)
            assert software == b"InfiniTime"
            assert await client.read_gatt_char(gatt.FIRMWARE_REVISION_UUID) == b"1.16.0"


async def test_a_second_host_cannot_reach_a_watch_that_holds_a_connection() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_infinitime()
        async with BleakClient(watch.address, backend=world.backend.client):
            heard = await BleakScanner.discover(
                timeout=1, return_adv=True, backend=world.backend.scanner
            )
            assert watch.address not in heard  # it stops advertising while connected
        assert watch.connections == 1
        heard = await BleakScanner.discover(
            timeout=1, return_adv=True, backend=world.backend.scanner
        )
        assert watch.address in heard  # and advertises again once free


async def test_do_not_disturb_silences_every_buzz() -> None:
    async with VirtualWorld() as world:
        watch = await world.add_infinitime(InfiniTimeConfig(notifications_on=False))
        async with BleakClient(watch.address, backend=world.backend.client) as client:
            await client.write_gatt_char(gatt.ALERT_LEVEL_UUID, b"\x02", response=False)
            await client.write_gatt_char(kg.NEW_ALERT_UUID, b"\x00\x01\x00Hi\0", response=True)
            await asyncio.sleep(0.1)
        assert watch.motor == []
        assert len(watch.notifications) == 2
