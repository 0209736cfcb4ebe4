"""Virtual bands served to host processes: ``companion sim`` and ``python -m companion.sim``.

Addressing: the server listens on one TCP port of 127.0.0.1 and is named by
the URL ``sim://127.0.0.1:PORT``. Each socket accepted there is one host
process's Bluetooth adapter: the server puts a fresh virtual controller for it
on the bands' link and speaks HCI with it over that socket, and the host builds
its central on ``tcp-client:127.0.0.1:PORT`` (see :mod:`companion.sim.remote`).

Why not Bumble's stock ``tcp-server`` transport, one port per host: it feeds
every socket into one HCI parser, so two hosts on one port corrupt each other's
packets, and it has no hook for a lost client. Here every socket has its own
parser (Bumble's ``StreamPacketSource``), so any number of hosts share one
port, and when a socket closes (even because its process crashed) that host's
links are dropped, as a real adapter's are, and the bands advertise again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Self, TextIO, cast

from bumble.transport.common import StreamPacketSink, StreamPacketSource

from ..clock import Clock, LoopClock
from ..errors import CompanionError
from .band import PairingConfirmation, PairingRequest, VirtualBand, VirtualBandConfig
from .controller import SimController
from .world import VirtualWorld

__all__ = [
    "AskWearer",
    "SimServer",
    "class_band_configs",
    "run_sim_server",
    "server_band_configs",
    "terminal_wearer",
]

logger = logging.getLogger(__name__)

_LOOPBACK = "127.0.0.1"
_HOST_CLOSE_TIMEOUT_S = 2.0

#: Asks the wearer of ``band`` whether the code a host shows is ``request``'s: True confirms.
AskWearer = Callable[[VirtualBand, PairingRequest], Awaitable[bool]]


def server_band_configs(
    bands: int = 1,
    *,
    name: str = "Companion",
    drift_ppm: float = 0.0,
    confirmation: PairingConfirmation = PairingConfirmation.WEARER,
    first_serial: int = 1,
) -> list[VirtualBandConfig]:
    """Configurations for ``bands`` bands named as ``companion run --sim`` names them.

    One band is called ``name``; several are ``name1``, ``name2``..., with
    serials ``SIM0001``... (from ``first_serial``: servers run side by side
    need different ones, as a band's serial is its identity to a host) so their
    addresses stay the same from run to run.
    Their wearer confirms every pairing (``confirmation``), since other
    processes, anyone's, can reach a band server.
    """
    if bands < 1:
        raise ValueError(f"a band server needs at least one band, not {bands}")
    return [
        replace(
            VirtualBandConfig(),
            name=name if bands == 1 else f"{name}{index + 1}",
            serial=f"SIM{first_serial + index:04d}",
            drift_ppm=drift_ppm,
            pairing_confirmation=confirmation,
        )
        for index in range(bands)
    ]


def class_band_configs(
    count: int,
    *,
    seed: int = 7,
    clock: Clock | None = None,
    first_serial: int = 0,
) -> list[VirtualBandConfig]:
    """Configurations for a class of ``count`` bands, as a group class meets them.

    Each band has its own clock offset (up to a minute) and drift (within
    ±50 ppm, as crystals are), drawn from ``random.Random(seed)`` so a seed
    gives the same class every run. The bands are named ``Class000``,
    ``Class001``... with serials ``CLASS000``... from ``first_serial``: two
    processes serving bands of one class need different ones, as a band's
    serial is its identity to a host. The bands from ``first_serial`` on are
    the same as in one list of ``first_serial + count`` bands with that seed.
    ``clock`` is the host-side time base their clocks derive from (the band's
    default when None).
    """
    if count < 0:
        raise ValueError(f"a class has no fewer than zero bands, not {count}")
    if first_serial < 0:
        raise ValueError(f"band serials start at zero or later, not {first_serial}")
    rng = random.Random(seed)
    configs = []
    for number in range(first_serial + count):
        clock_offset_us = rng.randrange(1_000_000, 60_000_000_000)
        drift_ppm = rng.uniform(-50.0, 50.0)
        if number < first_serial:
            continue
        configs.append(
            VirtualBandConfig(
                name=f"Class{number:03d}",
                serial=f"CLASS{number:03d}",
                clock_offset_us=clock_offset_us,
                drift_ppm=drift_ppm,
                hr_seed=number,
                clock=clock,
            )
        )
    return configs


class _HostSocket(asyncio.Protocol):
    """One host process: its socket, and the virtual controller it drives through it."""

    def __init__(self, server: SimServer, name: str) -> None:
        self._server = server
        self._name = name
        self._transport: asyncio.Transport | None = None
        self._source: StreamPacketSource | None = None
        self._controller: SimController | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._source = StreamPacketSource()
        self._controller = SimController(
            self._name,
            host_source=self._source,
            host_sink=StreamPacketSink(self._transport),
            link=self._server.world.link,
        )
        self._server._hosts.add(self)
        logger.info("host %s connected from %s", self._name, transport.get_extra_info("peername"))

    def data_received(self, data: bytes) -> None:
        if self._source is not None:
            self._source.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._controller is not None:
            self._controller.detach_host()
        self._server._hosts.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)
        logger.info("host %s went away%s", self._name, f": {exc}" if exc else "")

    def close(self) -> None:
        """Hang up on this host (its links drop when the socket is gone)."""
        if self._transport is not None:
            self._transport.close()


class SimServer:
    """``async with SimServer(configs, port=0) as server``: bands other processes reach.

    ``server.url`` (``sim://127.0.0.1:PORT``) is what a host passes to
    :func:`companion.sim.remote.remote_backend`; ``server.world`` is the
    in-process :class:`VirtualWorld` holding the bands (for tests to look at).
    """

    def __init__(
        self,
        bands: Sequence[VirtualBandConfig] = (VirtualBandConfig(),),
        *,
        port: int = 0,
        host: str = _LOOPBACK,
    ) -> None:
        self.world = VirtualWorld(name="sim-server")
        self.port = port
        self._configs = list(bands)
        self._host = host
        self._server: asyncio.Server | None = None
        self._hosts: set[_HostSocket] = set()
        self._names = itertools.count(1)

    @property
    def url(self) -> str:
        """Where hosts connect: ``sim://HOST:PORT``."""
        return f"sim://{self._host}:{self.port}"

    @property
    def bands(self) -> list[VirtualBand]:
        """The bands served, in the order they were configured."""
        return self.world.bands

    @property
    def hosts(self) -> int:
        """How many host processes are connected now."""
        return len(self._hosts)

    async def __aenter__(self) -> Self:
        try:
            for config in self._configs:
                await self.world.add_band(config)
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _HostSocket(self, f"host{next(self._names)}"), self._host, self.port
            )
        except ValueError as exc:  # a band name too long for its advertisement
            await self.close()
            raise CompanionError(str(exc)) from exc
        except OSError as exc:
            await self.close()
            raise CompanionError(
                f"cannot listen on {self._host}:{self.port} ({exc.strerror or exc}): is another "
                "band server running there? Pick another --port, or 0 for a free one"
            ) from exc
        except BaseException:
            await self.close()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("serving %d virtual band(s) at %s", len(self.bands), self.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop listening, hang up on every host, and switch the bands off."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        hosts = list(self._hosts)
        for host in hosts:
            host.close()
        if hosts:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_HOST_CLOSE_TIMEOUT_S):
                    await asyncio.gather(*(asyncio.shield(host.closed) for host in hosts))
        if server is not None:
            await server.wait_closed()
        await self.world.close()


async def run_sim_server(
    port: int,
    *,
    bands: int = 1,
    name: str = "Companion",
    drift_ppm: float = 0.0,
    speed: float = 1.0,
    confirmation: PairingConfirmation = PairingConfirmation.WEARER,
    ask_wearer: AskWearer | None = None,
    ready: Callable[[SimServer], None] | None = None,
    first_serial: int = 1,
) -> None:
    """Serve ``bands`` virtual bands on 127.0.0.1:``port`` until cancelled (``companion sim``).

    ``port`` 0 picks a free port; ``speed`` runs the bands' clocks faster (a host
    at the same speed sees a sped-up workout); ``ready`` is called once with the server
    (its ``url`` is ``sim://127.0.0.1:PORT``) when hosts can connect. With
    ``confirmation`` WEARER every pairing request goes to ``ask_wearer``
    (without one, nobody can confirm, and every pairing is refused). Raises
    :class:`~companion.errors.CompanionError` if the port is taken or a band
    name is too long to advertise.
    """
    try:
        configs = server_band_configs(
            bands,
            name=name,
            drift_ppm=drift_ppm,
            confirmation=confirmation,
            first_serial=first_serial,
        )
    except ValueError as exc:
        raise CompanionError(str(exc)) from exc
    if speed != 1.0:
        configs = [replace(config, clock=LoopClock(speed)) for config in configs]
    async with SimServer(configs, port=port) as server, asyncio.TaskGroup() as tasks:
        if ready is not None:
            ready(server)
        if confirmation is PairingConfirmation.WEARER and ask_wearer is not None:
            for band in server.bands:
                tasks.create_task(_answer_pairings(band, ask_wearer))
        await asyncio.get_running_loop().create_future()  # until cancelled


async def _answer_pairings(band: VirtualBand, ask_wearer: AskWearer) -> None:
    async for request in band.pairing_requests():
        if await ask_wearer(band, request):
            band.confirm_pairing()
        else:
            band.reject_pairing()


def terminal_wearer(write: Callable[[str], None], stdin: TextIO = sys.stdin) -> AskWearer | None:
    """The wearer at a terminal: shows each band's code and reads ``y`` or ``n`` from ``stdin``.

    ``write`` shows one line to the person. None if ``stdin`` is not a
    terminal: nobody can be asked there, so pairings are refused (the band's
    own timeout), which is the safe answer for a server nobody watches.
    """
    if not stdin.isatty():
        return None
    turn = asyncio.Lock()  # one question on the terminal at a time, whichever band asks

    async def ask(band: VirtualBand, request: PairingRequest) -> bool:
        async with turn:
            if band.pairing_request != request:
                return False  # it expired while another band's question was on screen
            timeout = band.config.pairing_timeout_s
            write(f"{band.config.name}: host {request.peer} asks to pair; the band shows {request}")
            write(
                f"  if the host shows {request} too, type y and Enter to confirm on the band; "
                f"n to refuse ({timeout:g} s)"
            )
            try:
                async with asyncio.timeout(timeout):
                    while (line := await _read_line(stdin)) is not None:
                        answer = line.strip().lower()
                        if answer in ("y", "yes"):
                            write(f"{band.config.name}: confirmed {request}")
                            return True
                        if answer in ("n", "no"):
                            write(f"{band.config.name}: refused")
                            return False
                        write("  type y or n, then Enter")
            except TimeoutError:
                write(f"{band.config.name}: no answer within {timeout:g} s; pairing refused")
            return False

    return ask


async def _read_line(stdin: TextIO) -> str | None:
    """The next line typed on ``stdin`` (a terminal), or None at its end, without a thread."""
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()

    def readable() -> None:
        if not line.done():
            line.set_result(stdin.readline())

    loop.add_reader(stdin.fileno(), readable)
    try:
        text = await line
    finally:
        loop.remove_reader(stdin.fileno())
    return text or None
