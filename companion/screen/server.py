"""ClassScreen: the class screen's one local web server, an async context manager.

The thin edge: uvicorn serves :class:`~companion.screen.app.ScreenApp` on a
socket bound here (so a busy port is an error of ours, raised before anything
runs), and one task turns the source's changes into wake-ups of every open
stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Self

import uvicorn

from ..errors import CompanionError
from .app import Changes, ClassSource, ScreenApp

__all__ = ["ClassScreen"]

logger = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C belongs to the program that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ClassScreen:
    """The studio TV's page of a class, served live at :attr:`url` while inside ``async with``.

    ``/`` is the page (everything it needs is served from the package: it works
    with no internet), ``/events`` a server-sent-events stream of
    :func:`~companion.screen.snapshot_to_json` on every change and at least every
    ``refresh_s``, ``/snapshot.json`` the snapshot now.

    It binds to loopback by default: only a browser on this host sees it. Binding
    to ``0.0.0.0`` (say, for a TV on the studio's network) shows every
    participant's name, heart rate and battery to anyone on the LAN, with no
    password: do it on a network you trust. ``port=0`` picks a free port.
    Reusable, not re-entrant.
    """

    def __init__(
        self,
        source: ClassSource,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        refresh_s: float = 1.0,
        shutdown_timeout_s: float = 5.0,
    ) -> None:
        self._source = source
        self._host = host
        self._port = port
        self._refresh_s = refresh_s
        self._shutdown_timeout_s = shutdown_timeout_s
        self._server: _EmbeddedServer | None = None
        self._tasks: tuple[asyncio.Task[None], ...] = ()
        self._changes: Changes | None = None
        self._address: tuple[str, int] | None = None

    @property
    def url(self) -> str:
        """Where the page is, e.g. ``http://127.0.0.1:8765/``."""
        if self._address is None:
            raise CompanionError("the class screen is not running: use it inside `async with`")
        host, port = self._address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when ``port=0``)."""
        if self._address is None:
            raise CompanionError("the class screen is not running: use it inside `async with`")
        return self._address[1]

    async def __aenter__(self) -> Self:
        if self._server is not None:
            raise CompanionError("this class screen is already running")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            sock.listen()
        except OSError as exc:
            sock.close()
            raise CompanionError(
                f"the class screen cannot listen on {self._host}:{self._port} ({exc.strerror}):"
                " pick another --screen-port, or 0 for any free one"
            ) from exc
        sock.setblocking(False)
        self._address = sock.getsockname()[:2]
        changes = Changes()
        app = ScreenApp(self._source, changes, refresh_s=self._refresh_s)
        config = uvicorn.Config(
            app,
            lifespan="off",
            ws="none",
            http="h11",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=max(1, round(self._shutdown_timeout_s)),
        )
        server = _EmbeddedServer(config)
        self._server, self._changes = server, changes
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="class-screen-server")
        watching = asyncio.create_task(self._watch(changes), name="class-screen-changes")
        self._tasks = (serving, watching)
        while not server.started:
            if serving.done():
                self._server, self._tasks, self._address = None, (), None
                watching.cancel()
                await asyncio.wait((watching,))
                sock.close()
                serving.result()  # its error, if it had one
                raise CompanionError("the class screen's web server stopped as it started")
            await asyncio.sleep(0.01)
        logger.info("class screen at %s", self.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        server, changes, (serving, watching) = self._server, self._changes, self._tasks
        assert server is not None
        assert changes is not None
        try:
            changes.closed.set()  # open event streams end, so the server need not wait for them
            server.should_exit = True
            watching.cancel()
            await asyncio.wait((serving, watching))
            serving.result()  # the server's own failure, if it had one
        finally:
            self._server, self._changes, self._tasks, self._address = None, None, (), None

    async def _watch(self, changes: Changes) -> None:
        """Wake the streams on each change; the source ending leaves the 1-second refresh."""
        try:
            async for _ in self._source.events():
                changes.notify()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The page goes on with the snapshot each refresh brings; the log says why
            # it no longer follows each change.
            logger.exception("the class screen stopped following the class's changes")
