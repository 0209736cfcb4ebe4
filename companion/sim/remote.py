"""Reach virtual bands served by another process (``companion sim``) through bleak.

``remote_backend("sim://127.0.0.1:PORT")`` is a
:class:`~companion.ble.backend.BleakBackend` like ``VirtualWorld.backend``, so
``Band.connect(name_or_address, backend=remote_backend(url))`` and plain
``BleakClient(address, backend=backend.client)`` work unchanged. Its central
is a Bumble device whose controller lives in the server process, reached over
``tcp-client:127.0.0.1:PORT`` (see :mod:`companion.sim.serve`).

The socket is open exactly while a scanner runs or a client is connected (as
bleak code has no "close the adapter" call), so nothing outlives its user and
a test's teardown leaves no transport behind. The central keeps one address and
one key store across those openings, so bonds survive reconnects as they do
with an OS adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from bleak.exc import BleakError
from bumble.device import Device
from bumble.keys import MemoryKeyStore
from bumble.transport import open_transport
from bumble.transport.common import StreamPacketSink

from ..ble.backend import BleakBackend
from .backend import SimAdapter
from .band import random_static_address
from .quiet import QuietHost
from .world import central_device

__all__ = ["SIM_URL_SCHEME", "RemoteAdapter", "parse_sim_url", "remote_backend"]

logger = logging.getLogger(__name__)

SIM_URL_SCHEME: Final = "sim"
_OPEN_TIMEOUT_S: Final = 5.0
_CLOSE_TIMEOUT_S: Final = 2.0
_instances = itertools.count(1)


def parse_sim_url(url: str) -> tuple[str, int]:
    """The host and port of a band server URL, ``sim://127.0.0.1:PORT``.

    Raises ``ValueError`` naming the expected form, so a typo fails at once.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != SIM_URL_SCHEME or not parts.hostname or port is None:
        raise ValueError(
            f"{url!r} is not a band server address: expected {SIM_URL_SCHEME}://127.0.0.1:PORT "
            "(the line `companion sim` prints)"
        )
    return parts.hostname, port


@dataclass(slots=True)
class _Session:
    """One opening of the adapter: a socket to the server and the central on it."""

    transport: Any  # bumble.transport.common.Transport (untyped)
    device: Device
    connect_lock: asyncio.Lock

    def hang_up(self) -> None:
        # The host is done with this central: it needs no "transport lost" news, and Bumble's
        # Host would fail on it (InvalidStateError) if a command's answer is still on its way
        # to the coroutine that sent it.
        self.transport.source.sink = None
        sink = self.transport.sink
        if isinstance(sink, StreamPacketSink):
            sink.close()

    @property
    def terminated(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.transport.source.terminated
        return future


class RemoteAdapter(SimAdapter):
    """The host's adapter on a band server in another process (see :func:`remote_backend`)."""

    def __init__(self, url: str, *, name: str = "host") -> None:
        super().__init__()
        self.url = url
        self._server_host, self._server_port = parse_sim_url(url)
        self._name = name
        # Every central on the server's link needs an address of its own: one per adapter.
        self.address = random_static_address(
            f"host:{socket.gethostname()}:{os.getpid()}:{next(_instances)}:{url}"
        )
        self._keystore = MemoryKeyStore()
        self._users = 0
        self._session: _Session | None = None
        self._closing: asyncio.Future[None] | None = None
        self._open_lock = asyncio.Lock()

    @property
    def connect_lock(self) -> asyncio.Lock:
        """Held around a connect: the central makes one LE connection at a time."""
        if self._session is None:
            raise BleakError(f"the adapter at {self.url} is not open")
        return self._session.connect_lock

    async def acquire(self) -> Device:
        """The central, connecting to the server first if nobody uses it yet."""
        async with self._open_lock:
            await self.settle()
            if self._session is None:
                self._session = await self._open()
            self._users += 1
            return self._session.device

    def release(self) -> None:
        """One user fewer; the last one hangs up (wait for it with :meth:`settle`)."""
        if self._users <= 0:
            raise RuntimeError("RemoteAdapter.release() without a matching acquire()")
        self._users -= 1
        session = self._session
        if self._users == 0 and session is not None:
            self._session = None
            # Hang up now, synchronously: a task scheduled for it might never run if the
            # loop ends first, and the socket would be left to the garbage collector.
            session.hang_up()
            self._closing = session.terminated

    async def settle(self) -> None:
        """Wait until a hang-up is complete (the socket is closed)."""
        closing = self._closing
        if closing is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await asyncio.shield(closing)
        if self._closing is closing:
            self._closing = None

    async def _open(self) -> _Session:
        spec = f"tcp-client:{self._server_host}:{self._server_port}"
        try:
            transport = await open_transport(spec)
        except OSError as exc:
            raise BleakError(
                f"no virtual band server at {self.url} ({exc.strerror or exc}): start one with "
                f"`companion sim --port {self._server_port}`"
            ) from None
        device = central_device(
            QuietHost(transport.source, transport.sink), self._name, self.address
        )
        device.keystore = self._keystore
        session = _Session(transport, device, asyncio.Lock())
        try:
            async with asyncio.timeout(_OPEN_TIMEOUT_S):
                await device.power_on()
        except BaseException as exc:
            session.hang_up()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await asyncio.shield(session.terminated)
            if isinstance(exc, TimeoutError):
                raise BleakError(
                    f"{self.url} did not answer as a virtual band server: is it `companion sim`?"
                ) from None
            raise
        session.terminated.add_done_callback(lambda _f: self._on_terminated(session))
        logger.debug("adapter %s open on %s", self.address, self.url)
        return session

    def _on_terminated(self, session: _Session) -> None:
        if self._session is session:  # not our hang-up: the server went away
            logger.info("the virtual band server at %s went away", self.url)
            self._lost()


def remote_backend(url: str) -> BleakBackend:
    """A bleak backend reaching the bands served at ``url`` (``sim://127.0.0.1:PORT``).

    Pass it as ``Band.connect(..., backend=...)``; every call makes a new
    adapter (its own central address and bonds), like plugging in a dongle.
    """
    return RemoteAdapter(url).backend
