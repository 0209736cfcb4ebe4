"""Who may drive the companion band: foreign Bumble centrals on the virtual link.

Each intruder is a plain Bumble ``Device`` with its own random static address
(not our bleak backend), pairing however it likes and answering "yes" to
every question it is asked. The band must refuse every control write and
send it no event (not even the replayed buffer) and no heart rate, while the
legitimate host still pairs through the bleak backend and runs a workout.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from bumble import hci
from bumble.att import ATT_Error
from bumble.controller import Controller
from bumble.core import UUID, ProtocolError
from bumble.device import Connection, Device, DeviceConfiguration, Peer
from bumble.gatt import GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR
from bumble.host import Host
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

import firmware_protocol as fp
from companion.band import Band
from companion.events import SessionDone
from companion.plan import builtin_plan
from companion.session import Session
from companion.sim import VirtualBand, VirtualBandConfig, VirtualWorld
from companion.sim.band import random_static_address
from companion.sim.serve import server_band_configs
from companion.store import Store
from firmware_protocol import gatt

pytestmark = pytest.mark.looptime

_REFUSALS = {0x05, 0x0F}  # insufficient authentication / insufficient encryption
_LISTEN_S = 3.0


class Pairing(enum.Enum):
    """How an intruder pairs (or not) before it tries to drive the band."""

    NONE = "none"
    LEGACY_JUST_WORKS = "legacy-just-works"  # no SC, no display: what the outside tester did
    LEGACY_CLAIMING_DISPLAY = "legacy-display-yes-no"  # legacy has no numeric comparison
    SC_JUST_WORKS = "sc-just-works"  # Secure Connections with no IO: Just Works
    SC_PASSKEY = "sc-passkey"  # a keyboard-only central: passkey entry, no wearer in it


_SETUP = {
    Pairing.LEGACY_JUST_WORKS: (False, False, PairingDelegate.NO_OUTPUT_NO_INPUT),
    Pairing.LEGACY_CLAIMING_DISPLAY: (False, True, PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT),
    Pairing.SC_JUST_WORKS: (True, False, PairingDelegate.NO_OUTPUT_NO_INPUT),
    Pairing.SC_PASSKEY: (True, True, PairingDelegate.KEYBOARD_INPUT_ONLY),
}


class _SaysYes(PairingDelegate):
    """An intruder that accepts every code and enters whatever it is asked for."""

    async def confirm(self, auto: bool = False) -> bool:
        return True

    async def compare_numbers(self, number: int, digits: int) -> bool:
        return True

    async def get_number(self) -> int | None:
        return 0


@dataclass
class Attempt:
    """What an intruder got out of the band."""

    paired: bool | None = None  # None: it never tried
    write_errors: list[int] = field(default_factory=list)
    subscribe_errors: list[int] = field(default_factory=list)
    notifications: list[bytes] = field(default_factory=list)


@contextlib.asynccontextmanager
async def intruder(
    world: VirtualWorld, name: str, pairing: Pairing = Pairing.SC_JUST_WORKS
) -> AsyncIterator[Device]:
    """A foreign central on the band's link: Bumble's own controller and device, nothing of ours."""
    sc, mitm, io = _SETUP.get(
        pairing, (True, True, PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT)
    )
    controller = Controller(name, link=world.link)
    device = Device(
        config=DeviceConfiguration(
            name=name,
            address=hci.Address(
                random_static_address(f"intruder:{name}"), hci.Address.RANDOM_DEVICE_ADDRESS
            ),
        ),
        host=Host(controller, AsyncPipeSink(controller)),
    )
    device.pairing_config_factory = lambda _c: PairingConfig(
        sc=sc, mitm=mitm, bonding=True, delegate=_SaysYes(io_capability=io)
    )
    await device.power_on()
    try:
        yield device
    finally:
        for connection in list(device.connections.values()):
            with contextlib.suppress(Exception):
                await connection.disconnect()
        with contextlib.suppress(Exception):
            await device.power_off()
        world.link.remove_controller(controller)


async def _connect(device: Device, band: VirtualBand) -> Connection:
    address = hci.Address(band.address, hci.Address.RANDOM_DEVICE_ADDRESS)
    return await device.connect(address, timeout=5)


async def _pair(connection: Connection) -> bool:
    try:
        async with asyncio.timeout(60):
            await connection.pair()
    except (ProtocolError, TimeoutError):
        return False
    return True


async def _drive(connection: Connection, attempt: Attempt) -> Attempt:
    """Subscribe to events and heart rate, send HELLO every way, listen: all it gets is kept."""
    peer = Peer(connection)
    await peer.request_mtu(247)
    await peer.discover_services()
    await peer.discover_characteristics()

    def only(uuid: str) -> object:
        (found,) = peer.get_characteristics_by_uuid(UUID(uuid))
        return found

    control, events, heart = (
        only(u)
        for u in (gatt.CONTROL_CHAR_UUID, gatt.EVENTS_CHAR_UUID, gatt.HEART_RATE_MEASUREMENT_UUID)
    )
    for characteristic in (events, heart):
        try:
            await peer.subscribe(characteristic, attempt.notifications.append)
        except ATT_Error as exc:
            attempt.subscribe_errors.append(exc.error_code)
        # The sneaky way too: a CCCD write without response, which has no answer to refuse.
        await peer.discover_descriptors(characteristic)
        cccd = characteristic.get_descriptor(GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR)  # type: ignore[attr-defined]
        await peer.write_value(cccd, b"\x01\x00", with_response=False)

    hello = fp.fragment(
        fp.encode_frame(fp.Hello(fp.PROTOCOL_VERSION, fp.PROTOCOL_VERSION), 7),
        connection.att_mtu - 3,
    )
    for piece in hello:
        try:
            await peer.write_value(control, piece, with_response=True)
        except ATT_Error as exc:
            attempt.write_errors.append(exc.error_code)
    for piece in hello:
        await peer.write_value(control, piece, with_response=False)
    await asyncio.sleep(_LISTEN_S)  # virtual time: the band's heart rate ticks every second
    return attempt


async def _band_with_history(world: VirtualWorld, config: VirtualBandConfig) -> VirtualBand:
    """A band that has been worn a while: heart-rate events wait in its replay buffer."""
    band = await world.add_band(config)
    await asyncio.sleep(5)
    assert band.heart_rate_samples_sent >= 4
    return band


def _assert_nothing_got_through(band: VirtualBand, attempt: Attempt) -> None:
    assert attempt.notifications == []  # no event, no replayed event, no heart rate
    assert len(attempt.write_errors) == 1  # HELLO fits one fragment at MTU 247
    assert set(attempt.write_errors) <= _REFUSALS
    assert len(attempt.subscribe_errors) == 2
    assert set(attempt.subscribe_errors) <= _REFUSALS
    assert band.protocol.errors == 0  # nothing, not even garbage, reached the protocol
    assert band.protocol.state is fp.SessionStateCode.IDLE


@pytest.mark.parametrize("pairing", list(Pairing), ids=lambda p: p.value)
async def test_an_intruder_that_is_not_paired_by_numeric_comparison_drives_nothing(
    pairing: Pairing,
) -> None:
    async with VirtualWorld() as world:
        # Even the demo policy, which confirms every code by itself, refuses these.
        band = await _band_with_history(world, VirtualBandConfig())
        async with intruder(world, "Intruder", pairing) as device:
            connection = await _connect(device, band)
            attempt = Attempt()
            if pairing is not Pairing.NONE:
                attempt.paired = await _pair(connection)
            await _drive(connection, attempt)

    assert attempt.paired in (None, False)  # refused at pairing time...
    _assert_nothing_got_through(band, attempt)  # ...and at the ATT layer
    if pairing is not Pairing.NONE:
        assert band.refused_pairings == 1


async def test_numeric_comparison_nobody_confirms_on_the_band_drives_nothing() -> None:
    async with VirtualWorld() as world:
        # As `companion sim` serves its bands: the wearer confirms, and nobody does here.
        (config,) = server_band_configs(1)
        band = await _band_with_history(world, config)
        async with intruder(world, "Intruder", Pairing.SC_JUST_WORKS) as device:
            device.pairing_config_factory = lambda _c: PairingConfig(
                sc=True,
                mitm=True,
                bonding=True,
                delegate=_SaysYes(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_YES_NO_INPUT),
            )
            connection = await _connect(device, band)
            pairing = asyncio.create_task(_pair(connection))
            await asyncio.sleep(1)  # the band shows its code and waits for the wearer
            attempt = await _drive(connection, Attempt())  # meanwhile, it tries anyway
            attempt.paired = await pairing  # the band gives up waiting
            await _drive(connection, attempt)  # and after

    assert attempt.paired is False
    assert attempt.notifications == []
    assert len(attempt.write_errors) == 2
    assert set(attempt.write_errors) <= _REFUSALS
    assert set(attempt.subscribe_errors) <= _REFUSALS
    assert band.protocol.errors == 0
    assert band.protocol.state is fp.SessionStateCode.IDLE


async def test_numeric_comparison_the_wearer_rejects_drives_nothing() -> None:
    async with VirtualWorld() as world:
        (config,) = server_band_configs(1)
        band = await _band_with_history(world, config)
        async with intruder(world, "Intruder", Pairing.SC_JUST_WORKS) as device:
            device.pairing_config_factory = lambda _c: PairingConfig(
                sc=True,
                mitm=True,
                bonding=True,
                delegate=_SaysYes(io_capability=PairingDelegate.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT),
            )
            connection = await _connect(device, band)
            pairing = asyncio.create_task(_pair(connection))
            request = await anext(band.pairing_requests())
            assert 0 <= request.code <= 999_999
            assert band.reject_pairing()  # the wearer never asked to pair
            attempt = await _drive(connection, Attempt(paired=await pairing))

    assert attempt.paired is False
    _assert_nothing_got_through(band, attempt)


async def test_the_host_the_wearer_confirms_runs_a_workout_and_reconnects_without_asking_again(
    tmp_path: Path,
) -> None:
    async with VirtualWorld() as world:
        (config,) = server_band_configs(1)
        band = await world.add_band(replace(config, clock=None))
        async with intruder(world, "Intruder", Pairing.LEGACY_JUST_WORKS) as device:
            connection = await _connect(device, band)
            assert not await _pair(connection)
            await connection.disconnect()

        asked: list[str] = []

        async def wearer() -> None:
            async for request in band.pairing_requests():
                asked.append(str(request))
                band.confirm_pairing()

        presser = asyncio.create_task(wearer())
        try:
            with Store(tmp_path / "sessions.sqlite3") as store:
                async with Band.connect(band.address, backend=world.backend) as host:
                    session = Session(host, builtin_plan("back-5", rounds=1), store=store)
                    runner = asyncio.create_task(session.run())
                    await host.clock.sleep(100)
                    band.drop_link()  # the host comes back on its bond: nobody is asked again
                    await runner
                events = [e.event for e in store.events(session.session_id)]
        finally:
            presser.cancel()

    assert len(asked) == 1
    assert len(asked[0]) == 6
    assert isinstance(events[-1], SessionDone)
    assert band.refused_writes == 0
