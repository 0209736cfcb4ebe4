"""The class screen's three routes as a plain ASGI application.

Three fixed routes need no framework: the page and its two static files, the
snapshot as JSON, and a server-sent-events stream of it. No I/O of its own
beyond what the ASGI server hands it; :class:`~companion.screen.ClassScreen`
runs it.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Final, Protocol

from ..group_json import snapshot_to_json
from ..group_state import ClassSnapshot

__all__ = ["Changes", "ClassSource", "ScreenApp"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_STATIC: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/screen.css": ("screen.css", "text/css; charset=utf-8"),
    "/screen.js": ("screen.js", "text/javascript; charset=utf-8"),
}
# Everything is served from here, so the page may load nothing from elsewhere: no CDN,
# no inline script, and a name that smuggled markup in would still not run.
_SECURITY: Final = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]


class ClassSource(Protocol):
    """What a screen shows: a class, or anything that snapshots like one.

    The same two methods as a session (``snapshot()``, ``events()``), so a class
    that publishes its events satisfies it as it is.
    """

    def snapshot(self) -> ClassSnapshot:
        """The class now."""
        ...

    def events(self) -> AsyncIterator[object]:
        """A new subscription: an item (any event) each time the snapshot may have changed."""
        ...


class Changes:
    """A broadcast of "something changed" to every open stream, without a queue each."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = asyncio.Event()

    def notify(self) -> None:
        """Wake every stream waiting now; later waits wait for the next change."""
        self._event.set()
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        """The event the next :meth:`notify` sets."""
        return self._event


class ScreenApp:
    """The ASGI application: ``/``, ``/snapshot.json`` and ``/events`` of one source."""

    def __init__(self, source: ClassSource, changes: Changes, *, refresh_s: float = 1.0) -> None:
        self._source = source
        self._changes = changes
        self._refresh_s = refresh_s
        folder = importlib.resources.files(__package__ or "companion.screen") / "static"
        self._files = {
            path: ((folder / name).read_bytes(), kind.encode())
            for path, (name, kind) in _STATIC.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no lifespan or websocket: the server runs with neither
            return
        path = scope["path"]
        if scope["method"] != "GET":
            await _respond(send, 405, b"method not allowed\n", b"text/plain; charset=utf-8")
        elif path in self._files:
            body, kind = self._files[path]
            await _respond(send, 200, body, kind)
        elif path == "/snapshot.json":
            await _respond(send, 200, self._json(), b"application/json")
        elif path == "/events":
            await self._stream(receive, send)
        else:
            await _respond(send, 404, b"not found\n", b"text/plain; charset=utf-8")

    def _json(self) -> bytes:
        data = snapshot_to_json(self._source.snapshot())
        return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()

    async def _stream(self, receive: Receive, send: Send) -> None:
        """Server-sent events: the snapshot now, on every change and at least every refresh."""
        headers = [
            (b"content-type", b"text/event-stream"),
            (b"x-accel-buffering", b"no"),
            *_SECURITY,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # A browser that reconnects (the host restarted) tries again after a second.
        await send({"type": "http.response.body", "body": b"retry: 1000\n\n", "more_body": True})
        gone = asyncio.create_task(_disconnected(receive))
        closed = asyncio.create_task(self._changes.closed.wait())
        try:
            while not gone.done() and not closed.done():
                payload = b"event: snapshot\ndata: " + self._json() + b"\n\n"
                await send({"type": "http.response.body", "body": payload, "more_body": True})
                changed = asyncio.create_task(self._changes.current().wait())
                try:
                    await asyncio.wait(
                        (gone, closed, changed),
                        timeout=self._refresh_s,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    changed.cancel()
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            closed.cancel()
            await asyncio.wait((gone, closed))  # never raises their CancelledError, only ours


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _respond(send: Send, status: int, body: bytes, kind: bytes) -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *_SECURITY]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
