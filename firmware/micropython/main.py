# A companion band on MicroPython + aioble: the radio around companion_band.BandCore.
#
# Serves the companion GATT service (control: write, encrypted + authenticated; events:
# notify), Heart Rate, Battery and Device Information; pairs with LE Secure Connections
# and numeric comparison confirmed by a button press (aioble leaves the passkey action
# unhandled: the handler below fills that gap); plays cue patterns on a PWM motor pin;
# and keeps a 64-bit microsecond band clock over ticks_us. The protocol itself is in
# companion_band.py / companion_proto.py, which the tests run under MicroPython.
#
# This file needs a board with Bluetooth (ESP32, or a port with aioble support): it is
# compiled by mpy-cross in the tests but cannot run there. See README.md.

import asyncio

import aioble
import bluetooth
import board
import companion_band
import companion_proto as p
from aioble import core as aioble_core
from clock64 import Clock64
from machine import PWM, Pin

_COMPANION = bluetooth.UUID("6d2c0001-6f6e-4f9c-8a3b-636f6d70616e")
_CONTROL = bluetooth.UUID("6d2c0002-6f6e-4f9c-8a3b-636f6d70616e")
_EVENTS = bluetooth.UUID("6d2c0003-6f6e-4f9c-8a3b-636f6d70616e")
_HEART_RATE = bluetooth.UUID(0x180D)
_HRM = bluetooth.UUID(0x2A37)
_BODY_SENSOR_LOCATION = bluetooth.UUID(0x2A38)
_BATTERY = bluetooth.UUID(0x180F)
_BATTERY_LEVEL = bluetooth.UUID(0x2A19)
_DEVICE_INFO = bluetooth.UUID(0x180A)
_APPEARANCE_WATCH = 0x00C1

_FLAG_WRITE_ENCRYPTED = 0x1000
_FLAG_WRITE_AUTHENTICATED = 0x2000
_IRQ_PASSKEY_ACTION = 31
_PASSKEY_ACTION_NUMCMP = 4
_IO_CAPABILITY_DISPLAY_YESNO = 1
_MAX_WAIT_MS = 500  # poll the clock at least this often (ticks_us wraps)


# -- GATT --------------------------------------------------------------------------------

companion = aioble.Service(_COMPANION)
# capture=True queues every write: a frame's fragments arrive back to back.
control = aioble.BufferedCharacteristic(
    companion, _CONTROL, write=True, write_no_response=True, capture=True, max_len=512
)
# aioble has no constructor flag for it: only a paired, authenticated link may write.
control.flags |= _FLAG_WRITE_ENCRYPTED | _FLAG_WRITE_AUTHENTICATED
events = aioble.Characteristic(companion, _EVENTS, notify=True)

heart_rate = aioble.Service(_HEART_RATE)
hrm = aioble.Characteristic(heart_rate, _HRM, notify=True)
aioble.Characteristic(heart_rate, _BODY_SENSOR_LOCATION, read=True, initial=b"\x02")
battery = aioble.Service(_BATTERY)
battery_level = aioble.Characteristic(
    battery, _BATTERY_LEVEL, read=True, notify=True, initial=b"\x64"
)
device_info = aioble.Service(_DEVICE_INFO)
for uuid, text in (
    (0x2A29, "Companion Project"),
    (0x2A24, "MicroPython Band"),
    (0x2A26, board.FIRMWARE),
    (0x2A25, board.SERIAL),
):
    aioble.Characteristic(device_info, bluetooth.UUID(uuid), read=True, initial=text.encode())
aioble.register_services(companion, heart_rate, battery, device_info)

ble = aioble_core.ble
ble.config(mtu=247)
ble.config(bond=True, le_secure=True, mitm=True, io=_IO_CAPABILITY_DISPLAY_YESNO)


# -- the band ----------------------------------------------------------------------------

clock = Clock64()
core = companion_band.BandCore(
    companion_band.BandInfo(
        firmware_version=board.FIRMWARE, motor=p.MOTOR_VIBRATE | p.MOTOR_INTENSITY
    ),
    boot_id=clock.now_us() ^ (id(clock) & 0x7FFFFFFF),  # differs from boot to boot
)
inbox = []
wake = asyncio.ThreadSafeFlag()
state = {"connection": None, "subscribed": False, "pairing": None}


class Motor:
    """Plays patterns on a PWM pin; a new cue cuts the one still playing."""

    def __init__(self):
        self._pwm = PWM(Pin(board.MOTOR_PIN), freq=board.MOTOR_PWM_HZ, duty_u16=0)
        self._task = None

    def play(self, pattern):
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.create_task(self._play(pattern))

    async def _play(self, pattern):
        duty = pattern.intensity * 257  # 0..255 -> 0..65535
        try:
            for on_ms, off_ms in pattern.pulses:
                self._pwm.duty_u16(duty)
                await asyncio.sleep_ms(on_ms)
                self._pwm.duty_u16(0)
                if off_ms:
                    await asyncio.sleep_ms(off_ms)
        finally:
            self._pwm.duty_u16(0)


motor = Motor()


# -- pairing: numeric comparison confirmed by the button -----------------------------------


def _passkey_irq(event, data):
    # aioble's security module logs this event and does nothing (its handler returns
    # None, so the event reaches this one). Numeric comparison: show the number, and let
    # the button accept it; no press in time rejects it.
    if event != _IRQ_PASSKEY_ACTION:
        return
    conn_handle, action, passkey = data
    if action == _PASSKEY_ACTION_NUMCMP:
        print("pairing: does the host show %06d? press the button to accept" % passkey)
        state["pairing"] = (conn_handle, clock.now_us() + board.PAIRING_CONFIRM_MS * 1000)
        motor.play(p.default_pattern(p.CUE_SWITCH_SIDE))  # feel it: look at the host
    else:
        ble.gap_passkey(conn_handle, action, 0)  # only numeric comparison is offered
    return


aioble_core.register_irq_handler(_passkey_irq)


def _answer_pairing(accept):
    conn_handle, _ = state["pairing"]
    state["pairing"] = None
    ble.gap_passkey(conn_handle, _PASSKEY_ACTION_NUMCMP, 1 if accept else 0)
    print("pairing", "accepted" if accept else "rejected")


# -- tasks -----------------------------------------------------------------------------------


async def radio():
    while True:
        connection = await aioble.advertise(
            50_000, name=board.NAME, services=[_COMPANION], appearance=_APPEARANCE_WATCH
        )
        state["connection"] = connection
        state["subscribed"] = False
        await connection.disconnected(timeout_ms=None)
        state["connection"] = None
        core.connection_lost()


async def receive():
    while True:
        connection, data = await control.written()
        if connection is not state["connection"]:
            continue
        if not state["subscribed"]:
            # aioble reports no CCCD write: the host subscribes, then sends HELLO, so its
            # first write marks the stream as open (events notified earlier are resent).
            state["subscribed"] = True
            core.connection_made(getattr(connection, "mtu", None) or 23, clock.now_us())
        inbox.append(bytes(data))
        wake.set()


async def drive():
    while True:
        deadline = core.next_deadline_us()
        wait_ms = _MAX_WAIT_MS
        if deadline is not None:
            wait_ms = min(wait_ms, (clock.ticks_at(deadline) + 999) // 1000)
        if not inbox and wait_ms > 0:
            try:
                await asyncio.wait_for_ms(wake.wait(), wait_ms)
            except asyncio.TimeoutError:
                pass
        now = clock.now_us()
        connection = state["connection"]
        if connection is not None:
            mtu = getattr(connection, "mtu", None)
            if mtu and mtu != core.mtu:
                core.set_mtu(mtu)
        while inbox:
            core.receive_data(inbox.pop(0), now)
        core.tick(now)
        for _cue_id, _kind, pattern, _at in core.motor_actions():
            motor.play(pattern)
        fragments = core.data_to_send()
        if connection is not None and state["subscribed"]:
            for fragment in fragments:
                try:
                    events.notify(connection, fragment)
                except Exception as exc:  # the link may go mid-notification
                    print("notify:", exc)
                    break


async def buttons():
    button = Pin(board.BUTTON_PIN, Pin.IN, Pin.PULL_UP if board.BUTTON_ACTIVE_LOW else None)
    pressed_at = None
    while True:
        await asyncio.sleep_ms(20)
        down = button.value() == (0 if board.BUTTON_ACTIVE_LOW else 1)
        now = clock.now_us()
        pairing = state["pairing"]
        if pairing is not None and now > pairing[1]:
            _answer_pairing(False)
        if down and pressed_at is None:
            pressed_at = now
        elif not down and pressed_at is not None:
            held_ms = (now - pressed_at) // 1000
            pressed_at = None
            if state["pairing"] is not None:
                _answer_pairing(True)
            elif held_ms >= board.LONG_PRESS_MS:
                core.press_button(p.BUTTON_PAIN, now)
            else:
                core.press_button(p.BUTTON_STOP, now)
            wake.set()


async def main():
    await asyncio.gather(radio(), receive(), drive(), buttons())


asyncio.run(main())
