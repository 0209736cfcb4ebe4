"""The ``companion`` command: run a workout on a band, follow it, look back at it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import logging
import signal
import socket
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

import firmware_protocol as fp

from . import __version__
from .band import Band
from .ble.backend import BleakBackend
from .ble.link import PAIRING_ADVICE
from .ble.scan import scan as scan_bands
from .clock import LoopClock
from .errors import CompanionError
from .events import (
    CueTiming,
    SessionDone,
    SessionEvent,
    SessionStopped,
    StepStarted,
    StopReason,
    StopSource,
)
from .extras import MissingExtraError
from .heap import keep_long_lived
from .kinds import CAPABILITIES, Capabilities, connect_for_session
from .plan import BUILTIN_PLANS, MAX_ROUNDS, builtin_plan, resolve_plan
from .session import Session
from .state import BandKind, CueMode
from .store import Store, default_store_path
from .view import LiveView

if TYPE_CHECKING:
    from .mqtt import BrokerConfig, Relay

__all__ = ["main"]

_T = TypeVar("_T")
_MQTT_DEFAULT_PORT: Final = 1883
_EXIT_INTERRUPTED: Final = 130
# Stopped like Ctrl-C: a terminal closing (SIGHUP), `kill`, `timeout`, `systemctl stop`.
_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_LATE_CUE_MS: Final = 50.0
# The virtual band's heart rate and notifications speed up with the clock: at 600x a
# 2-core machine falls behind them (300x still works); 100x keeps a margin.
_MAX_SPEED: Final = 100.0

# No markup: plan names, tips, band names and error messages are the user's text and are
# shown as written (`Plank [hold]`); styles are given as rich Text, never parsed from strings.
console = Console(markup=False)
# Errors are never wrapped or cut: a path or a command in one can be copied whole.
errors = Console(stderr=True, markup=False, soft_wrap=True)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = RichHandler(console=errors, show_path=False, rich_tracebacks=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)


def _fail(message: str) -> None:
    errors.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)
    sys.exit(1)


def _run_async(main: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``main`` with companion errors shown as one clear line, not a traceback.

    SIGINT, SIGTERM and SIGHUP all cancel ``main`` the same way, wherever it is (a
    session stops its workout on the band, a half-open connection closes), and
    the process exits with 128 + the signal's number.
    """
    received: list[signal.Signals] = []

    async def wrapped() -> _T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_signal(signum: signal.Signals) -> None:
            if received:
                logging.getLogger(__name__).warning("already stopping, please wait")
                return
            received.append(signum)
            task.cancel()

        handled = []
        for signum in _STOP_SIGNALS:
            with contextlib.suppress(ValueError, RuntimeError):  # not the main thread
                loop.add_signal_handler(signum, on_signal, signum)
                handled.append(signum)
        try:
            return await main()
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)

    try:
        return asyncio.run(wrapped())
    except CompanionError as exc:
        _fail(str(exc))
    except (KeyboardInterrupt, asyncio.CancelledError):
        signum = received[0] if received else signal.SIGINT
        errors.print("interrupted" if signum == signal.SIGINT else f"stopped by {signum.name}")
        sys.exit(128 + int(signum))
    raise AssertionError("unreachable")


def _require_extra(package: str, alternative: str) -> None:
    """Fail in one line, before any band is touched, if the extra behind ``package`` is missing."""
    try:
        importlib.import_module(f"{__package__}.{package}")
    except MissingExtraError as exc:
        _fail(f"{exc}, {alternative}")


class _Group(click.Group):
    """The command group: a missing optional extra is one line that names it, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MissingExtraError as exc:
            _fail(str(exc))
            raise AssertionError("unreachable") from None


def _store(db: Path | None, *, create: bool = True) -> Store:
    return Store(db, create=create) if db else Store(create=create)


def _one_band(sim: bool, target: str | None, option: str) -> None:
    """``--sim`` and a real band exclude each other; one of them is needed."""
    if sim and target is not None:
        raise click.UsageError(
            f"--sim and {option} conflict: --sim is a virtual band in this process, "
            f"{option} a real band (or one served by `companion sim`); give only one of them"
        )
    if not sim and target is None:
        raise click.UsageError(f"choose a band with {option}, or --sim for a virtual band")


@contextlib.asynccontextmanager
async def _virtual_world(
    count: int,
    clock: LoopClock | None = None,
    *,
    kinds: tuple[BandKind, ...] = (),
) -> Any:
    """A virtual world with ``count`` companion bands, then one device of each other kind
    in ``kinds``.

    Yields ``(world, addresses)``: the address of every device added, in that order.
    """
    from .sim import (
        BangleConfig,
        InfiniTimeConfig,
        PairingConfirmation,
        VirtualBandConfig,
        VirtualWorld,
    )
    from .sim.serve import server_band_configs

    async with VirtualWorld() as world:
        addresses: list[str] = []
        # Named as `companion sim` names them. These bands confirm their pairing code by
        # themselves: they live on this process's private link, which no other central can
        # reach, and the person running the demo is their wearer (README, "Pairing").
        companions = (
            server_band_configs(count, confirmation=PairingConfirmation.AUTOMATIC) if count else []
        )
        for config in companions:
            band = await world.add_band(dataclasses.replace(config, clock=clock))
            addresses.append(band.address)
        if BandKind.HR_STRAP in kinds:  # a standard heart-rate strap, as people already own
            strap = await world.add_band(
                VirtualBandConfig(
                    name="HR Strap", serial="STRAP01", companion_service=False, clock=clock
                )
            )
            addresses.append(strap.address)
        if BandKind.INFINITIME in kinds:  # the watches people own, as their firmware behaves
            watch = await world.add_infinitime(InfiniTimeConfig(clock=clock))
            addresses.append(watch.address)
        if BandKind.BANGLE in kinds:
            bangle = await world.add_bangle(BangleConfig(clock=clock))
            addresses.append(bangle.address)
        yield world, addresses


def _remote_target(target: str) -> tuple[str, BleakBackend]:
    """``sim://HOST:PORT[/NAME_OR_ADDRESS]``: a band served by `companion sim`."""
    from .sim.remote import parse_sim_url, remote_backend

    base, slash, band = target[len("sim://") :].partition("/")
    url = f"sim://{base}"
    try:
        parse_sim_url(url)
    except ValueError as exc:
        raise CompanionError(str(exc)) from None
    return (band if slash and band else "Companion"), remote_backend(url, show_code=_show_code)


def _show_code(code: int) -> None:
    """What the virtual adapter's "pairing dialog" shows, where an OS would show its own."""
    console.print(
        Text.assemble(
            "this computer shows pairing code ",
            (f"{code:06d}", "bold"),
            ": the band's wearer must see the same code and confirm it on the band "
            "(the `companion sim` terminal)",
        ),
        highlight=False,
    )


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="companion")
@click.option("-v", "--verbose", count=True, help="Log more (-v: progress, -vv: protocol detail).")
def main(verbose: int) -> None:
    """Guide a workout on a BLE fitness band, with haptic cues timed by the band itself.

    \b
    Try it with no hardware (a virtual band, 10x speed):
        companion run --sim --speed 10
    With a band:
        companion scan
        companion pair AA:BB:CC:DD:EE:FF
        companion run back-5 --band AA:BB:CC:DD:EE:FF --rounds 3
    Follow a session from MQTT alone (another terminal or machine):
        companion monitor --mqtt mqtt://127.0.0.1:1883
    """
    _setup_logging(verbose)


# -- run -------------------------------------------------------------------------------


@main.command()
@click.argument("plan", default="back-5")
@click.option(
    "--band",
    "target",
    metavar="ADDRESS",
    help="Band address or name; sim://127.0.0.1:PORT[/NAME] for `companion sim`'s bands.",
)
@click.option("--sim", is_flag=True, help="Use a virtual band in this process (no hardware).")
@click.option(
    "--kind",
    type=click.Choice([k.value for k in BandKind]),
    callback=lambda _ctx, _param, value: BandKind(value) if value else None,
    help="What the band is, instead of finding out from what it advertises; with --sim, "
    "which virtual device (companion band, InfiniTime, Bangle.js, heart-rate strap).",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1, max=_MAX_SPEED),
    default=1.0,
    show_default=True,
    help="With --sim: run the workout this many times faster (a demo; at most 100).",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, MAX_ROUNDS),
    help=f"Repeat the plan N times (1-{MAX_ROUNDS}) [default: the plan's own].",
)
@click.option(
    "--scan-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds to look for the band before giving up.",
)
@click.option(
    "--mqtt",
    "mqtt_url",
    metavar="URL",
    help="Relay to this broker: mqtt://[user:pw@]host[:port] or mqtts://... "
    "[default: an embedded broker on 127.0.0.1:1883]",
)
@click.option("--no-mqtt", is_flag=True, help="Do not relay the session over MQTT.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-hr-mqtt", is_flag=True, help="Keep heart rate (health data) off MQTT.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Session database.")
@click.option(
    "--take-over",
    is_flag=True,
    help="If the band runs a workout this host did not start, stop it and start this one.",
)
def run(
    plan: str,
    target: str | None,
    sim: bool,
    kind: BandKind | None,
    speed: float,
    rounds: int | None,
    scan_timeout: float,
    mqtt_url: str | None,
    no_mqtt: bool,
    ca_file: Path | None,
    no_hr_mqtt: bool,
    db: Path | None,
    take_over: bool,
) -> None:
    """Run a workout PLAN on a band: push it, start it, show it live, record it.

    PLAN is a built-in plan (see `companion plans`; default back-5) or a TOML
    file (see docs/plans.md). The band fires every cue from its own clock, so
    cues stay exact even if the link drops; the session is recorded in the
    history (`companion history`) and relayed over MQTT for dashboards.
    Ctrl-C stops the workout on the band and keeps what was recorded (so do
    SIGTERM and SIGHUP).

    If the band already runs a workout that this host recorded (it crashed or
    was killed), the run adopts it: the same session goes on, with the events
    the band kept meanwhile. A workout this host did not start is left alone
    unless --take-over; `companion stop` ends it.
    """
    _one_band(sim, target, "--band ADDRESS")
    if speed != 1.0 and not (sim or (target or "").startswith("sim://")):
        raise click.UsageError(
            "--speed only applies to a virtual band (--sim, or sim://… with `companion sim "
            "--speed` at the same speed)"
        )
    if no_mqtt and mqtt_url:
        raise click.UsageError("--mqtt and --no-mqtt contradict each other")
    if not no_mqtt:
        _require_extra("mqtt", "or pass --no-mqtt")
    try:
        workout = resolve_plan(plan, rounds)
    except CompanionError as exc:
        _fail(str(exc))

    async def go() -> None:
        # Shared with every process of this machine: a run that adopts a workout after a
        # crash records times on the same scale as the run that started it.
        clock = LoopClock(speed, shared=not sim)
        async with contextlib.AsyncExitStack() as stack:
            store = stack.enter_context(_store(db))  # a bad data folder fails before the band
            backend: BleakBackend | None = None
            address = target or ""
            if address.startswith("sim://"):
                address, backend = _remote_target(address)
            if sim:
                others = () if kind in (None, BandKind.COMPANION) else (kind,)
                world, addresses = await stack.enter_async_context(
                    _virtual_world(0 if others else 1, clock, kinds=others)
                )
                backend, address = world.backend, addresses[0]
            console.print(f"connecting to {'the virtual band' if sim else address}...")
            band = await connect_for_session(
                address, kind=kind, backend=backend, clock=clock, scan_timeout=scan_timeout
            )
            await stack.enter_async_context(band)
            _say_what_the_band_does(band.info.name, CAPABILITIES[band.info.kind])
            session = Session(band, workout, store=store, late_cue_ms=_LATE_CUE_MS)
            session.cancel_reason = StopReason.USER  # Ctrl-C or a signal: a person at the host
            if await session.prepare(take_over=take_over):
                console.print(
                    f"adopted the workout already running on the band: session "
                    f"{session.session_id} goes on",
                    highlight=False,
                )
            relay = None
            if not no_mqtt:
                relay = await stack.enter_async_context(
                    _relay(session, mqtt_url, ca_file, not no_hr_mqtt)
                )
            try:
                async with LiveView(session, console, relay):
                    await session.run()
            finally:
                _print_summary(store, session.session_id)

    _run_async(go)


@contextlib.asynccontextmanager
async def _relay(
    session: Session, url: str | None, ca_file: Path | None, heart_rate: bool
) -> AsyncIterator[Relay]:
    """The session's relay: to the broker at ``url``, or to an embedded one on 127.0.0.1."""
    from .mqtt import BrokerConfig, EmbeddedBroker, Relay

    async with contextlib.AsyncExitStack() as stack:
        if url is not None:
            config = BrokerConfig.from_url(url, ca_file=ca_file)
        else:
            port = _MQTT_DEFAULT_PORT if _port_is_free(_MQTT_DEFAULT_PORT) else None
            broker = await stack.enter_async_context(EmbeddedBroker(port))
            if port is None:
                errors.print(
                    f"port {_MQTT_DEFAULT_PORT} is taken (a broker already runs?): the embedded "
                    f"broker listens on 127.0.0.1:{broker.port}; or pass --mqtt URL"
                )
            config = broker.config
        yield await stack.enter_async_context(Relay(session, config, heart_rate=heart_rate))


def _say_what_the_band_does(name: str, features: Capabilities) -> None:
    """Before a workout on a band that does not time its own cues: what to expect of them."""
    if features.cue_mode is CueMode.BAND:
        return
    console.print(f"{name} ({features.kind.label}): {features.expected_error}", highlight=False)
    for note in features.notes:
        console.print(f"  - {note}", highlight=False)
    if fp.Button.PAIN not in features.buttons:
        console.print("  - it has no pain gesture: Ctrl-C here stops the workout", highlight=False)


def _print_summary(store: Store, session_id: str) -> None:
    try:
        summary = store.summary(session_id)
    except CompanionError:
        return  # the session never started: nothing was recorded
    table = Table(title=f"session {session_id}", show_header=False, title_justify="left")
    table.add_row("outcome", Text(summary.outcome))
    table.add_row("duration", f"{summary.duration_s / 60:.1f} min")
    table.add_row("rounds done", str(summary.rounds_done))
    if summary.cue_error_p50_ms is not None:
        table.add_row(
            "cue timing",
            f"{summary.cues} cues, error p50 {summary.cue_error_p50_ms:.1f} ms, "
            f"p99 {summary.cue_error_p99_ms:.1f} ms, max {summary.cue_error_max_ms:.1f} ms"
            + (" (real time)" if summary.speed != 1 else ""),
        )
        if summary.cue_timing is CueTiming.HOST:
            table.add_row("cue mode", "sent by this computer: the figures are delivery, not feel")
    if summary.speed != 1:
        table.add_row("speed", f"{summary.speed:g}x (a demo): duration is workout time")
    if summary.hr_avg is not None:
        table.add_row("heart rate", f"avg {summary.hr_avg:.0f} bpm, max {summary.hr_max} bpm")
    console.print(table)
    console.print(f"report: companion report {session_id}")


# -- bands -----------------------------------------------------------------------------


@main.command()
@click.option("--sim", is_flag=True, help="List virtual bands instead of real ones.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to listen.")
def scan(sim: bool, timeout: float) -> None:
    """List the bands in range: companion bands, InfiniTime and Bangle.js watches and
    standard heart-rate sensors, each with its kind and what it can do."""
    from .kinds import kind_of

    async def go() -> None:
        async with contextlib.AsyncExitStack() as stack:
            backend = None
            if sim:
                world, _ = await stack.enter_async_context(
                    _virtual_world(
                        2, kinds=(BandKind.HR_STRAP, BandKind.INFINITIME, BandKind.BANGLE)
                    )
                )
                backend = world.backend
            with console.status(f"listening for {timeout:g} s..."):
                found = await scan_bands(timeout=timeout, backend=backend)
        if not found:
            _fail(
                "no band found: is it charged, near, and not connected to a phone? "
                "Try again with a longer --timeout, or --sim for a virtual band."
            )
        table = Table("name", "address", "RSSI", "kind", "can do")
        for band in found:
            kind = kind_of(band)
            if kind is None:
                continue
            features = ", ".join(CAPABILITIES[kind].features())
            table.add_row(band.name or "?", band.address, f"{band.rssi} dBm", kind.value, features)
        console.print(table)

    _run_async(go)


@main.command()
@click.argument("address", required=False)
@click.option(
    "--band",
    "band_option",
    metavar="ADDRESS",
    help="The band (as for `run`); sim://127.0.0.1:PORT[/NAME] for `companion sim`'s bands.",
)
@click.option("--sim", is_flag=True, help="Pair with a virtual band (to see how it goes).")
def pair(address: str | None, band_option: str | None, sim: bool) -> None:
    """Pair and bond with the band at ADDRESS (once; later connections reuse the bond).

    The band accepts only LE Secure Connections with numeric comparison: your
    computer and the band each show a six-digit code. If they are the same,
    accept on the computer and press confirm on the band; if they differ,
    refuse on both (someone else is pairing). On Linux without a desktop
    prompt, run `bluetoothctl`, then `agent KeyboardDisplay` and
    `default-agent`, keep it open while pairing, and answer its "Confirm
    passkey NNNNNN (yes/no)" with yes only if the band shows NNNNNN.
    """
    if address is not None and band_option is not None:
        raise click.UsageError("give the band once: as ADDRESS or as --band ADDRESS")
    target_given = address or band_option
    _one_band(sim, target_given, "ADDRESS")

    async def go() -> None:
        async with contextlib.AsyncExitStack() as stack:
            backend = None
            target = target_given or ""
            if target.startswith("sim://"):
                target, backend = _remote_target(target)
            if sim:
                world, addresses = await stack.enter_async_context(_virtual_world(1))
                backend, target = world.backend, addresses[0]
                console.print(
                    "the virtual band runs in this process and confirms its code by itself "
                    "(a real band asks its wearer)",
                    highlight=False,
                )
            console.print(f"pairing with {target}: {PAIRING_ADVICE}", highlight=False)
            band = await stack.enter_async_context(Band.connect(target, backend=backend))
            info = band.info
            console.print(
                Text.assemble(
                    ("paired", "green"),
                    f" with {info.name} ({info.model or 'band'}, firmware "
                    f"{info.firmware or '?'}) at {target}",
                ),
                highlight=False,
            )

    _run_async(go)


@main.command("install-app")
@click.option("--band", "target", help="Address or name of the Bangle.js 2 (`companion scan`).")
@click.option("--print", "print_only", is_flag=True, help="Only say where the app's files are.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to find it.")
def install_app(target: str | None, print_only: bool, timeout: float) -> None:
    """Install the companion app on a Bangle.js 2 over Bluetooth, or print where it is.

    The files go over the watch's Nordic UART, as the Bangle.js App Loader sends
    them; then the app starts. The watch must not be connected to a phone or the
    App Loader meanwhile. The app's files are in the repository, firmware/banglejs.
    """
    from .banglejs import APP_DIR, app_files
    from .banglejs import install_app as install

    if print_only:
        try:
            files = app_files()
        except CompanionError as exc:
            _fail(str(exc))
        console.print(f"Bangle.js app: {APP_DIR}")
        for name, path in files:
            console.print(f"  {path.name} -> watch Storage {name!r}")
        console.print("install: companion install-app --band ADDRESS (or with the App Loader)")
        return
    if not target:
        _fail("give --band ADDRESS (from `companion scan`), or --print to see the files")
    assert target is not None

    async def go() -> None:
        console.print(f"installing the companion app on {target}...")
        names = await install(target, timeout=timeout)
        console.print(Text.assemble(("installed", "green"), f" {', '.join(names)}; started"))

    _run_async(go)


@main.command()
@click.option(
    "--band",
    "target",
    metavar="ADDRESS",
    required=True,
    help="Band address or name; sim://127.0.0.1:PORT[/NAME] for `companion sim`'s bands.",
)
@click.option("--scan-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Session database.")
def stop(target: str, scan_timeout: float, db: Path | None) -> None:
    """End the workout running on a band, whoever started it.

    For a workout nobody follows any more (its host crashed, or another host
    started it). If this host recorded it, its session is closed as stopped by
    the user, with what was recorded kept.
    """

    async def go() -> None:
        backend: BleakBackend | None = None
        address = target
        if address.startswith("sim://"):
            address, backend = _remote_target(address)
        console.print(f"connecting to {address}...")
        async with Band.connect(address, backend=backend, scan_timeout=scan_timeout) as band:
            capabilities = band.capabilities
            if capabilities is None or not capabilities.workout_running:
                console.print(f"no workout is running on {address}: nothing to stop")
                return
            band_session = capabilities.session_id
            await band.stop()
            with _store(db) as store:
                record = store.find_band_session(band.band_id, band_session)
                if record is not None and record.outcome is None:
                    _record_stop(store, record.id, record.band_id, band.clock.now())
            what = (
                f"session {record.id}"
                if record is not None
                else "a workout this host did not start"
            )
            console.print(
                f"stopped band workout {band_session:08x} ({what}) on {address}", highlight=False
            )

    _run_async(go)


def _record_stop(store: Store, session_id: str, band_id: str, t: float) -> None:
    """Close a session this host recorded but no longer follows: stopped by the user."""
    from datetime import UTC, datetime

    from .events import SessionEvent

    now = datetime.now(UTC)
    store.record(
        SessionEvent(
            band_id=band_id,
            session_id=session_id,
            number=store.last_event_number(session_id) + 1,
            at=now,
            event=SessionStopped(StopReason.USER, t, StopSource.HOST),
        )
    )
    store.end_session(session_id, now, f"stopped: {StopReason.USER.value}")


@main.command()
@click.option("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: pick a free one).")
@click.option("--bands", type=click.IntRange(1, 50), default=1, show_default=True)
@click.option("--name", default="Companion", show_default=True, help="Advertised name.")
@click.option(
    "--first-serial",
    type=click.IntRange(1, 9000),
    default=1,
    show_default=True,
    help="The first band's serial number (SIM0001): give servers run side by side different "
    "ones, as a serial is a band's identity to a host.",
)
@click.option("--drift-ppm", type=float, default=0.0, help="Band clock drift to simulate.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1, max=_MAX_SPEED),
    default=1.0,
    show_default=True,
    help="Run the bands' clocks this many times faster (use the same --speed for `run`).",
)
@click.option(
    "--auto-confirm",
    is_flag=True,
    help="Bands confirm every pairing code themselves, for unattended demos. This gives up "
    "MITM protection: anyone who reaches the port and claims a display pairs.",
)
def sim(
    port: int,
    bands: int,
    name: str,
    first_serial: int,
    drift_ppm: float,
    speed: float,
    auto_confirm: bool,
) -> None:
    """Run virtual bands in this process, for scripts in other processes.

    Prints the address to connect to (sim://127.0.0.1:PORT); use it as
    `companion run --band sim://127.0.0.1:PORT` (add /NAME to pick one of
    several bands: Companion1, Companion2...), or from Python with
    `companion.sim.remote_backend(URL)`. This terminal is the bands' wearer:
    when a host pairs, it shows the band's six-digit code and asks you to
    confirm it (y) if the host shows the same, or refuse (n). Legacy pairing
    and Just Works are always refused. Stop with Ctrl-C.
    """
    from .sim import PairingConfirmation
    from .sim.serve import SimServer, run_sim_server, terminal_wearer

    def ready(server: SimServer) -> None:
        console.print(f"virtual band(s) ready at {server.url}", highlight=False)
        if auto_confirm:
            errors.print(
                "--auto-confirm: the bands confirm every pairing code by themselves; anyone who "
                "reaches this port and claims a display and a yes/no button can pair",
                highlight=False,
            )

    def say(line: str) -> None:
        console.print(line, highlight=False, soft_wrap=True)

    ask = None if auto_confirm else terminal_wearer(say)
    if not auto_confirm and ask is None:
        errors.print(
            "stdin is not a terminal: nobody can confirm a pairing code here, so every pairing "
            "is refused (--auto-confirm for an unattended demo)",
            highlight=False,
        )
    confirmation = PairingConfirmation.AUTOMATIC if auto_confirm else PairingConfirmation.WEARER
    _run_async(
        lambda: run_sim_server(
            port,
            bands=bands,
            name=name,
            drift_ppm=drift_ppm,
            speed=speed,
            confirmation=confirmation,
            ask_wearer=ask,
            ready=ready,
            first_serial=first_serial,
        )
    )


# -- FIT files (the optional 'fit' extra) ----------------------------------------------


def _export_fit(store: Store, session_id: str, path: Path) -> Path:
    try:
        from .fit import export_fit
    except ImportError as exc:
        raise CompanionError(str(exc)) from exc
    return export_fit(store, session_id, path)


class _PlansCommand(click.Command):
    """`plans [NAME]`, and `plans import WORKOUT.fit`: the one subcommand of `plans`."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        if args[:1] == ["import"]:
            return plans_import.make_context(
                f"{info_name} import", args[1:], parent=parent, **extra
            )
        return super().make_context(info_name, args, parent=parent, **extra)


@click.command("import")
@click.argument("workout", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the plan to this TOML file  [default: print it]",
)
def plans_import(workout: Path, output: Path | None) -> None:
    """Turn a FIT workout file (from a training platform) into a TOML plan.

    Timed steps become steps, rest and recovery steps rests, repeats rounds;
    steps the band cannot time (distance, lap press, calories, reps without a
    time) are refused with the step named. The mapping is in docs/plans.md.
    `companion run WORKOUT.fit` runs the file without converting it.
    """
    from .plan import plan_to_toml

    try:
        try:
            from .fit import load_fit_plan
        except ImportError as exc:
            raise CompanionError(str(exc)) from exc
        plan = load_fit_plan(workout)
        text = plan_to_toml(plan)
        if output is None:
            click.echo(text, nl=False)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CompanionError(
                f"cannot write the plan to {output}: {exc.strerror}. "
                "Check that the folder exists and is writable, or choose another path"
            ) from exc
    except CompanionError as exc:
        _fail(str(exc))
    console.print(
        f"{workout} -> {output}: {len(plan.steps)} steps x {plan.rounds} rounds, "
        f"{plan.total_s / 60:.1f} min. Run it: companion run {output} --sim",
        highlight=False,
    )


# -- plans and history -----------------------------------------------------------------


@main.command(
    cls=_PlansCommand,
    epilog="Import a FIT workout: companion plans import WORKOUT.fit -o PLAN.toml",
)
@click.argument("name", required=False)
def plans(name: str | None) -> None:
    """List the built-in plans, or show the steps of one (a name or a TOML file)."""
    if name is None:
        table = Table("plan", "title", "steps", "one round")
        for builtin in BUILTIN_PLANS:
            plan = builtin_plan(builtin)
            table.add_row(builtin, plan.title, str(len(plan.steps)), f"{plan.total_s / 60:g} min")
        console.print(table)
        console.print("Show one with `companion plans NAME`; write your own: docs/plans.md")
        return
    try:
        plan = resolve_plan(name)
    except CompanionError as exc:
        _fail(str(exc))
    table = Table(
        "#", "step", "seconds", "switch side", "tip", title=Text(f"{plan.name}: {plan.title}")
    )
    for index, step in enumerate(plan.steps, 1):
        switch = f"at {step.duration_s / 2:g} s" if step.switch_side else ""
        table.add_row(str(index), step.name, f"{step.duration_s:g}", switch, step.tip)
    console.print(table)
    console.print(f"rounds: {plan.rounds}, rest between rounds: {plan.round_rest_s:g} s")
    for note in plan.notes:
        console.print(Text(note, style="bold red"))


@main.command()
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Session database.")
@click.option("--limit", type=int, default=20, show_default=True)
def history(db: Path | None, limit: int) -> None:
    """List recorded sessions, newest first."""
    default = default_store_path()
    if db is None and not default.exists() and not default.parent.is_file():
        console.print("no sessions yet: run one with `companion run --sim --speed 10`")
        return  # reading the history never creates it
    try:
        with _store(db, create=False) as store:
            records = store.sessions()[:limit]
            table = Table("session", "started (UTC)", "plan", "rounds", "outcome", "HR avg/max")
            for record in records:
                summary = store.summary(record.id)
                heart = (
                    f"{summary.hr_avg:.0f}/{summary.hr_max}" if summary.hr_avg is not None else "-"
                )
                table.add_row(
                    record.id,
                    record.started_at.strftime("%Y-%m-%d %H:%M"),
                    record.plan_name,
                    f"{summary.rounds_done}/{record.rounds_planned}",
                    summary.outcome,
                    heart,
                )
    except CompanionError as exc:
        _fail(str(exc))
    if not records:
        console.print("no sessions yet: run one with `companion run --sim --speed 10`")
        return
    console.print(table)


@main.command()
@click.argument("session")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Report file: .html or .png  [default: companion-SESSION.html]",
)
@click.option("--tcx", type=click.Path(dir_okay=False, path_type=Path), help="Also export TCX.")
@click.option(
    "--fit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also export a FIT activity (needs the 'fit' extra).",
)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Session database.")
def report(
    session: str, output: Path | None, tcx: Path | None, fit: Path | None, db: Path | None
) -> None:
    """Write a report of SESSION (an id or its first characters, see `companion history`).

    The report charts heart rate with each exercise shaded, the cue markers,
    a per-round summary and the cue timing. --tcx and --fit also write the
    session for training platforms (FIT: one lap per step).
    """
    from .export import export_tcx
    from .report import write_report

    try:
        with _store(db, create=False) as store:
            record = store.session(session)
            path = write_report(store, record.id, output or Path(f"companion-{record.id}.html"))
            console.print(f"report written to {path}")
            if tcx is not None:
                console.print(f"TCX written to {export_tcx(store, record.id, tcx)}")
            if fit is not None:
                console.print(f"FIT written to {_export_fit(store, record.id, fit)}")
    except CompanionError as exc:
        _fail(str(exc))


# -- MQTT side -------------------------------------------------------------------------


@main.command()
@click.option(
    "--mqtt",
    "mqtt_url",
    default=f"mqtt://127.0.0.1:{_MQTT_DEFAULT_PORT}",
    show_default=True,
    metavar="URL",
)
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--band", "band_id", help="Follow this band id only (default: the first seen).")
@click.option("--exit-when-done", is_flag=True, help="Exit when the session ends.")
def monitor(mqtt_url: str, ca_file: Path | None, band_id: str | None, exit_when_done: bool) -> None:
    """Follow a live session from MQTT alone, as a dashboard would.

    Subscribes to the relay's topics (companion/<band>/state and /event) and
    shows the same view as `companion run`; nothing but the broker is needed.
    It waits for a broker that is not up yet (or restarts), saying so. Ctrl-C
    quits the monitor only: the workout goes on on the band.
    """
    from .monitor import monitor as follow
    from .mqtt import BrokerConfig

    async def go() -> None:
        config = BrokerConfig.from_url(mqtt_url, ca_file=ca_file)
        await follow(config, console, band_id=band_id, exit_when_done=exit_when_done)

    _run_async(go)


@main.command("ha-remove")
@click.argument("band_id")
@click.option(
    "--mqtt", "mqtt_url", default=f"mqtt://127.0.0.1:{_MQTT_DEFAULT_PORT}", show_default=True
)
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ha_remove(band_id: str, mqtt_url: str, ca_file: Path | None) -> None:
    """Remove BAND_ID's device and entities from Home Assistant."""
    from .mqtt import BrokerConfig, remove_discovery

    async def go() -> None:
        config: BrokerConfig = BrokerConfig.from_url(mqtt_url, ca_file=ca_file)
        await remove_discovery(config, band_id)
        console.print(f"removed band {band_id} from Home Assistant discovery")

    _run_async(go)


# -- class -----------------------------------------------------------------------------


@main.command("class")
@click.argument("plan", required=False)
@click.option(
    "--band",
    "targets",
    multiple=True,
    metavar="ADDRESS",
    help="A participant's band (address or name; sim://127.0.0.1:PORT/NAME for `companion "
    "sim`'s bands); give --band once per band.",
)
@click.option(
    "--sim",
    "sim_bands",
    type=click.IntRange(1, 200),
    help="N virtual companion bands in this process, each with its own clock offset and drift.",
)
@click.option(
    "--roster",
    "roster_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Who wears which band: a TOML file of [[participant]] tables (band, name, and age or "
    "max_hr for their heart-rate zones); with --sim, the names go to the virtual bands in order.",
)
@click.option(
    "--links",
    type=click.IntRange(1, 32),
    default=5,
    show_default=True,
    help="Links this host's adapter holds at once; more bands than that take turns.",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, MAX_ROUNDS),
    help=f"Repeat the plan N times (1-{MAX_ROUNDS}) [default: the plan's own].",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1, max=_MAX_SPEED),
    default=1.0,
    show_default=True,
    help="With --sim on one host: run the class this many times faster (a demo; at most 100).",
)
@click.option(
    "--broker",
    "broker_url",
    metavar="URL",
    help="Run the class across several hosts through this MQTT broker (mqtt://[user:pw@]host"
    "[:port] or mqtts://...): this host coordinates unless it --join's.",
)
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--host",
    "host_name",
    metavar="NAME",
    help="This host's name in the class [default: its hostname].",
)
@click.option(
    "--hosts",
    "other_hosts",
    metavar="NAME,NAME",
    default="",
    help="Coordinator: the other hosts to wait for (their --host names), comma-separated.",
)
@click.option(
    "--class-id",
    metavar="ID",
    help="Coordinator: the class's id on the broker [default: a new random one]; pick one "
    "(say monday-6pm) to start the other hosts first.",
)
@click.option(
    "--join", "join_id", metavar="ID", help="Take part in class ID, coordinated elsewhere."
)
@click.option(
    "--max-host-offset-ms",
    type=click.FloatRange(min=0.1),
    default=2.5,
    show_default=True,
    help="Coordinator: refuse to start when a host's clock is surely further off its own.",
)
@click.option("--screen", is_flag=True, help="Serve the class screen (a page for the studio's TV).")
@click.option(
    "--screen-host",
    default="127.0.0.1",
    show_default=True,
    help="Where the screen listens; 0.0.0.0 shows every participant's heart rate to the LAN.",
)
@click.option("--screen-port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Session database.")
def class_(
    plan: str | None,
    targets: tuple[str, ...],
    sim_bands: int | None,
    roster_file: Path | None,
    links: int,
    rounds: int | None,
    speed: float,
    broker_url: str | None,
    ca_file: Path | None,
    host_name: str | None,
    other_hosts: str,
    class_id: str | None,
    join_id: str | None,
    max_host_offset_ms: float,
    screen: bool,
    screen_host: str,
    screen_port: int,
    db: Path | None,
) -> None:
    """Run PLAN (default back-5) as a group class: every band buzzes each cue at one instant.

    Every band gets the plan and one common start; each fires the cues on its
    own clock, kept on the class's instant at every turn. With more bands than
    --links, the bands take turns on the links (a band needs no link to buzz).
    Each participant's session is recorded in the history.

    Several hosts (a Pi per corner of the room): start the coordinator with
    --broker URL --class-id ID --hosts pi-b,pi-c, and on each other host
    `companion class --join ID --host pi-b --broker URL --band ...`. The start
    is one UTC instant: keep every host's clock with NTP; the coordinator
    measures each host's offset over the broker and refuses one that is off.
    """
    from .group import ClassEnded, GroupClass, Participant
    from .roster import load_roster

    roster = []
    if roster_file is not None:
        try:
            roster = load_roster(roster_file, bands_given=not sim_bands)
        except CompanionError as exc:
            _fail(str(exc))
        if not sim_bands:
            targets = (*(p.target for p in roster), *targets)
        elif len(roster) > sim_bands:
            raise click.UsageError(
                f"the roster names {len(roster)} people for {sim_bands} virtual bands: "
                f"raise --sim to {len(roster)}"
            )
    if bool(targets) == bool(sim_bands):
        raise click.UsageError(
            "give the bands with --band ADDRESS (once per band), a --roster FILE, or --sim N"
        )
    if speed != 1.0 and (not sim_bands or broker_url):
        raise click.UsageError(
            "--speed only applies to virtual bands (--sim N) on one host: hosts share real UTC"
        )
    if join_id and not broker_url:
        raise click.UsageError("--join needs the class's broker: --broker mqtt://HOST:PORT")
    if join_id and (plan or rounds or other_hosts or class_id):
        raise click.UsageError(
            "a host that --join's gets the plan, rounds and hosts from the coordinator: "
            "give PLAN, --rounds, --hosts and --class-id there"
        )
    if (other_hosts or class_id) and not broker_url:
        raise click.UsageError("--hosts and --class-id are for a class across hosts: add --broker")
    workout = None
    if not join_id:
        try:
            workout = resolve_plan(plan or "back-5", rounds)
        except CompanionError as exc:
            _fail(str(exc))
    expected = tuple(h.strip() for h in other_hosts.split(",") if h.strip())
    me = host_name or _host_name()

    async def go() -> None:
        clock = LoopClock(speed)
        async with contextlib.AsyncExitStack() as stack:
            store = stack.enter_context(_store(db))
            # Virtual bands of several hosts must differ: numbered after this host's name.
            first = zlib.crc32(me.encode()) % 90 * 100 if broker_url else 0
            backend, addresses = await _class_bands(stack, targets, sim_bands, clock, first)
            place = None
            chosen = workout
            if broker_url:
                place = await _class_place(
                    stack, broker_url, ca_file, me, join_id, class_id, expected
                )
                if place.announced is not None:
                    chosen = place.announced.plan
            assert chosen is not None
            # The roster's people wear the first bands (its own, or the virtual ones in order).
            people = [
                dataclasses.replace(person, target=address)
                for person, address in zip(roster, addresses, strict=False)
            ]
            people += [Participant(address) for address in addresses[len(people) :]]
            group = GroupClass(
                chosen,
                people,
                backend=backend,
                clock=clock,
                store=store,
                links=links,
                class_id=place.class_id if place else class_id,
            )
            host = place.host(group, max_host_offset_ms) if place else None
            source = host or group
            console.print(
                f"class {group.class_id}: {chosen.name} on {len(addresses)} bands here, "
                f"{links} links" + (" (the bands take turns)" if group.rotating else ""),
                highlight=False,
            )
            if host is not None:
                console.print(_class_hosts_line(host, expected, join_id), highlight=False)
            if screen:
                from .screen import ClassScreen

                shown = await stack.enter_async_context(
                    ClassScreen(source, screen_host, screen_port)
                )
                console.print(f"class screen at {shown.url}", highlight=False)
            group.cancel_reason = StopReason.USER  # Ctrl-C or a signal: a person at the host
            # Every band's stack lives as long as the class: keep Python's full collections
            # from walking them all with the loop stopped (companion/heap.py).
            keeper = asyncio.create_task(keep_long_lived())
            stack.callback(keeper.cancel)
            runner = asyncio.create_task(host.run() if host else group.run())
            lines = _ClassLines(
                lambda band_id: next(
                    (p.name for p in group.snapshot().participants if p.band_id == band_id),
                    band_id,
                )
            )
            try:
                async for event in group.events():
                    line = lines.line(event, clock.now())
                    if line:
                        console.print(line, highlight=False)
                    if isinstance(event, ClassEnded):
                        break
                final = await runner
            except asyncio.CancelledError:
                # The class stops on every band before the links and the store close.
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError, CompanionError):
                    await runner
                console.print(_class_table(source.snapshot()))  # every host's, as at the end
                raise
            console.print(_class_table(final))

    _run_async(go)


def _host_name() -> str:
    """This machine's name as one topic level (``pi-b`` of ``pi-b.local``)."""
    from .mqtt.class_topics import as_name

    return as_name(socket.gethostname().split(".")[0], "host")


async def _class_bands(
    stack: contextlib.AsyncExitStack,
    targets: tuple[str, ...],
    sim_bands: int | None,
    clock: LoopClock,
    first_sim: int,
) -> tuple[BleakBackend | None, list[str]]:
    """The backend the class's bands are reached through, and their addresses."""
    if sim_bands:
        world = await stack.enter_async_context(_class_world(sim_bands, clock, first_sim))
        return world.backend, [b.address for b in world.bands]
    servers = {t[len("sim://") :].partition("/")[0] for t in targets if t.startswith("sim://")}
    if not servers:
        return None, list(targets)
    if len(servers) > 1 or not all(t.startswith("sim://") for t in targets):
        raise CompanionError(
            "a class reaches its bands through one adapter: give bands of one `companion sim` "
            "server (sim://HOST:PORT/NAME each), or real bands, not both"
        )
    names, backend = [], None
    for target in targets:
        name, backend = _remote_target(target)
        names.append(name)
    return backend, names


@dataclasses.dataclass
class _ClassPlace:
    """This host's place in a class across hosts: its bus, and the class it is in."""

    bus: Any
    me: str
    class_id: str
    coordinator: bool
    expected: tuple[str, ...]
    announced: Any = None

    def host(self, group: Any, max_offset_ms: float) -> Any:
        from .mqtt.class_hosts import ClassHost

        return ClassHost(
            group,
            self.bus,
            host=self.me,
            coordinator=self.coordinator,
            expect_hosts=self.expected,
            max_offset_ms=max_offset_ms,
            notify=lambda text: errors.print(f"warning: {text}", highlight=False),
        )


async def _class_place(
    stack: contextlib.AsyncExitStack,
    url: str,
    ca_file: Path | None,
    me: str,
    join_id: str | None,
    class_id: str | None,
    expected: tuple[str, ...],
) -> _ClassPlace:
    import uuid

    from .mqtt import BrokerConfig
    from .mqtt.class_hosts import MqttClassBus, fetch_announcement
    from .mqtt.class_topics import ClassTopics, HostState, HostStatus, check_name, encode

    chosen = join_id or class_id or uuid.uuid4().hex[:12]
    try:
        check_name("the class id", chosen)
        check_name("this host's name (--host)", me)
        for other in expected:
            check_name("a host's name in --hosts", other)
    except ValueError as exc:
        raise CompanionError(str(exc)) from None
    topics = ClassTopics(chosen)
    will = encode(HostStatus(me, HostState.OFFLINE))
    bus = await stack.enter_async_context(
        MqttClassBus(
            BrokerConfig.from_url(url, ca_file=ca_file),
            f"companion-class-{chosen}-{me}",
            will=(topics.host(me), will),
        )
    )
    place = _ClassPlace(bus, me, chosen, join_id is None, expected)
    if join_id:
        console.print(f"waiting for class {join_id} on {url}...", highlight=False)
        place.announced = await fetch_announcement(bus, topics, timeout_s=600.0)
    return place


def _class_hosts_line(host: Any, expected: tuple[str, ...], join_id: str | None) -> str:
    if join_id:
        return f"host {host.host} in class {join_id}: the coordinator starts it"
    if not expected:
        return f"host {host.host} coordinates the class alone (no --hosts)"
    return f"host {host.host} coordinates; waiting for {', '.join(expected)} to get ready"


class _ClassLines:
    """The class's progress as terminal lines: its own events, and one band's steps;
    ``name_of`` gives a band's participant (their roster name, else the band's)."""

    def __init__(self, name_of: Callable[[str], str]) -> None:
        self._name_of = name_of
        self._steps_of: str | None = None  # every band shares the steps: one shows them
        self._rounds_before: dict[str, int] = {}  # a late band's plan starts at a later round
        self._class_stopped = False

    def line(self, event: object, now: float) -> str:
        from .group import (
            ClassEnded,
            ClassStarted,
            ClassStopped,
            ParticipantJoined,
            ParticipantStopped,
        )

        match event:
            case ClassStarted(resumed=True):
                return (
                    f"resumed the class the bands still run, {now - event.start:.0f} s in "
                    "(left running by a host that stopped without ending it)"
                )
            case ClassStarted(from_round=first) if first > 1:
                return (
                    f"the class began before this host: its {event.bands} bands join from "
                    f"round {first} (the cues before count as missed)"
                )
            case ClassStarted():
                return f"start in {event.start - now:.1f} s: every band has the same instant"
            case ParticipantJoined():
                self._rounds_before[event.band_id] = event.from_round - 1
                return f"{self._name_of(event.band_id)} joins from round {event.from_round}"
            case ClassStopped():
                self._class_stopped = True
                return f"class stopped ({event.reason.value}): every band gets STOP"
            case ParticipantStopped():
                tail = "" if self._class_stopped else "; the class goes on"
                return f"{self._name_of(event.band_id)} stopped ({event.reason.value}){tail}"
            case ClassEnded():
                return "class over"
            case SessionEvent(band_id=band_id, event=StepStarted() as step):
                self._steps_of = self._steps_of or band_id
                if band_id == self._steps_of:
                    round_ = step.round + self._rounds_before.get(band_id, 0)  # the class's
                    return f"round {round_}: {step.name} ({step.duration_s:g} s)"
            case SessionEvent(band_id=band_id, event=SessionDone()):
                return f"{self._name_of(band_id)} done"
        return ""


def _class_table(final: Any) -> Table:
    table = Table("participant", "phase", "bpm", "zone", "battery", "cues", "missed", "error ms")
    for p in final.participants:
        table.add_row(
            p.name,
            p.phase.value,
            "-" if p.heart_rate is None else str(p.heart_rate),
            str(int(p.zone)),
            "-" if p.battery is None else f"{p.battery} %",
            str(p.cues_fired),
            str(p.cues_missed),
            "-" if p.last_cue_error_ms is None else f"{p.last_cue_error_ms:+.1f}",
        )
    return table


@contextlib.asynccontextmanager
async def _class_world(count: int, clock: LoopClock, first: int = 0) -> AsyncIterator[Any]:
    """``count`` virtual bands (numbered from ``first``), each with its own clock offset (up
    to a minute) and drift (within ±50 ppm, as crystals are)."""
    from .sim import VirtualWorld, class_band_configs

    async with VirtualWorld() as world:
        for config in class_band_configs(count, seed=count, clock=clock, first_serial=first):
            await world.add_band(config)
        yield world
