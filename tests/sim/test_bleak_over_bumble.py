"""Plain bleak code, the kind a user writes, against the virtual band."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError

import firmware_protocol as fp
from companion.sim import VirtualBandConfig, VirtualWorld
from firmware_protocol import gatt

pytestmark = pytest.mark.looptime


async def test_scan_connect_read_subscribe_write_and_disconnect() -> None:
    async with VirtualWorld() as world:
        band = await world.add_band(VirtualBandConfig(serial="SIM0042"))
        device = await BleakScanner.find_device_by_filter(
            lambda d, adv: gatt.COMPANION_SERVICE_UUID in adv.service_uuids,
            timeout=5,
            backend=world.backend.scanner,
        )
        assert device is not None
        assert device.address == band.address
        async with BleakClient(device, backend=world.backend.client) as client:
            serial = await client.read_gatt_char(gatt.SERIAL_NUMBER_UUID)
            assert serial == b"SIM0042"
            assert client.mtu_size == 247
            await client.pair()  # the companion band's heart rate and events need it
            heart_rates: asyncio.Queue[fp.HeartRateMeasurement] = asyncio.Queue()
            await client.start_notify(
                gatt.HEART_RATE_MEASUREMENT_UUID,
                lambda _c, data: heart_rates.put_nowait(fp.HeartRateMeasurement.from_bytes(data)),
            )
            measurement = await asyncio.wait_for(heart_rates.get(), 5)
            assert 40 <= measurement.bpm <= 200
            assert measurement.contact is fp.ContactStatus.DETECTED

            replies: asyncio.Queue[bytes] = asyncio.Queue()
            await client.start_notify(
                gatt.EVENTS_CHAR_UUID, lambda _c, d: replies.put_nowait(bytes(d))
            )
            hello = fp.fragment(fp.encode_frame(fp.Hello(2, 2), 5), client.mtu_size - 3)
            for piece in hello:
                await client.write_gatt_char(gatt.CONTROL_CHAR_UUID, piece, response=True)
            reassembler = fp.Reassembler()
            while True:
                frame = reassembler.feed(await asyncio.wait_for(replies.get(), 5))
                if frame is not None and fp.decode_frame(frame).seq == 5:
                    break
            reply = fp.decode_frame(frame).message
            assert isinstance(reply, fp.Capabilities)
            assert reply.protocol_version == fp.PROTOCOL_VERSION
        assert not client.is_connected


async def test_unpaired_write_is_refused_and_accepted_after_pairing() -> None:
    async with VirtualWorld() as world:
        band = await world.add_band()
        async with BleakClient(band.address, backend=world.backend.client) as client:
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.write_gatt_char(gatt.CONTROL_CHAR_UUID, b"\xc0", response=True)
            assert refused.value.code in (0x05, 0x0F)
            await client.pair()
            await client.write_gatt_char(gatt.CONTROL_CHAR_UUID, b"\xc0", response=True)
        assert band.protocol.errors == 1  # it arrived (and was refused as a malformed frame)


async def test_link_drop_fires_the_disconnected_callback_and_reconnect_works() -> None:
    async with VirtualWorld() as world:
        band = await world.add_band()
        dropped = asyncio.Event()
        client = BleakClient(
            band.address,
            disconnected_callback=lambda _c: dropped.set(),
            backend=world.backend.client,
        )
        await client.connect()
        band.drop_link()
        await asyncio.wait_for(dropped.wait(), 5)
        assert not client.is_connected
        await client.connect()
        assert await client.read_gatt_char(gatt.MANUFACTURER_NAME_UUID) == b"Companion Project"
        await client.disconnect()


async def test_two_bands_on_one_link_are_told_apart_by_address() -> None:
    async with VirtualWorld() as world:
        first = await world.add_band(VirtualBandConfig(name="Band A", serial="A1", rssi=-40))
        second = await world.add_band(VirtualBandConfig(name="Band B", serial="B2", rssi=-70))
        found = await BleakScanner.discover(
            timeout=2, return_adv=True, backend=world.backend.scanner
        )
        by_address = {address: adv for address, (_d, adv) in found.items()}
        assert by_address[first.address].local_name == "Band A"
        assert by_address[second.address].rssi == -70
        for band, serial in ((first, b"A1"), (second, b"B2")):
            async with BleakClient(band.address, backend=world.backend.client) as client:
                assert await client.read_gatt_char(gatt.SERIAL_NUMBER_UUID) == serial


async def test_connecting_to_an_absent_band_times_out_and_leaves_the_adapter_usable() -> None:
    async with VirtualWorld() as world:
        band = await world.add_band()
        with pytest.raises(Exception, match=r"did not answer|timed out"):
            await BleakClient(
                "C1:22:33:44:55:66", timeout=2, backend=world.backend.client
            ).connect()
        async with BleakClient(band.address, backend=world.backend.client) as client:
            assert client.is_connected


async def test_bands_powered_on_together_sense_heart_rate_out_of_phase() -> None:
    # A band server powers its bands on within a fraction of a second; a room's bands are not
    # in phase, and bands that were would reach a host in one burst every second.
    async with VirtualWorld() as world:
        began = asyncio.get_running_loop().time()
        bands = [
            await world.add_band(VirtualBandConfig(name=f"B{n}", serial=f"SIM{n:04d}"))
            for n in range(1, 11)
        ]
        first: dict[str, float] = {}
        while len(first) < len(bands):
            await asyncio.sleep(0.005)
            now = asyncio.get_running_loop().time() - began
            for band in bands:
                if band.heart_rate_samples_sent and band.config.serial not in first:
                    first[band.config.serial] = now
            assert now < 1.5, f"a band sensed nothing in its first second: {first}"
    times = sorted(first.values())
    assert times[-1] - times[0] > 0.5  # in phase, they came within a few milliseconds
