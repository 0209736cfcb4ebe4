"""ClassScreen on a free loopback port, read with a real HTTP client (http.client)."""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from companion.errors import CompanionError
from companion.group_state import ClassSnapshot
from companion.screen import ClassScreen, snapshot_to_json
from tests.screen.fakes import FakeClass, twelve
from tests.test_packaging import _blocker, _python

ROOT = Path(__file__).resolve().parents[2]


def _get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class _Events:
    """An open ``/events`` stream, read one server-sent event at a time (blocking)."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.connection.request("GET", "/events")
        self.response = self.connection.getresponse()

    def next(self) -> dict[str, object]:
        lines: dict[str, str] = {}
        while True:
            line = self.response.readline().decode().rstrip("\n")
            if not line:
                if "data" in lines:
                    return {"event": lines.get("event"), "data": json.loads(lines["data"])}
                continue
            field, _, value = line.partition(": ")
            lines[field] = value

    def close(self) -> None:
        self.connection.close()


async def test_the_page_and_its_files_are_served_from_the_package_with_nothing_from_elsewhere() -> (
    None
):
    async with ClassScreen(FakeClass(twelve())) as screen:
        assert screen.url == f"http://127.0.0.1:{screen.port}/"
        status, headers, page = await asyncio.to_thread(_get, screen.port, "/")
        assert status == 200
        assert headers["content-type"].startswith("text/html")
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert b'<script src="/screen.js"' in page
        for path, kind in (("/screen.js", "text/javascript"), ("/screen.css", "text/css")):
            status, headers, body = await asyncio.to_thread(_get, screen.port, path)
            assert (status, headers["content-type"].split(";")[0]) == (200, kind)
            assert b"http://" not in body
            assert b"https://" not in body
        assert b"innerHTML" not in (await asyncio.to_thread(_get, screen.port, "/screen.js"))[2]


async def test_snapshot_json_is_the_snapshot_now() -> None:
    fake = FakeClass(twelve())
    async with ClassScreen(fake) as screen:
        status, headers, body = await asyncio.to_thread(_get, screen.port, "/snapshot.json")
        assert (status, headers["content-type"]) == (200, "application/json")
        assert json.loads(body) == snapshot_to_json(twelve())
        fake.show(twelve(offset=5))
        _, _, body = await asyncio.to_thread(_get, screen.port, "/snapshot.json")
        assert json.loads(body)["participants"][1]["heart_rate"] == 105


async def test_events_push_the_snapshot_at_once_and_again_on_each_change() -> None:
    fake = FakeClass(twelve())
    # A refresh far longer than the test: the second event can only be the change's.
    async with ClassScreen(fake, refresh_s=60) as screen:
        events = await asyncio.to_thread(_Events, screen.port)
        try:
            assert events.response.getheader("content-type") == "text/event-stream"
            first = await asyncio.to_thread(events.next)
            assert first == {"event": "snapshot", "data": snapshot_to_json(twelve())}
            started = time.monotonic()
            fake.show(twelve(offset=7))
            second = await asyncio.to_thread(events.next)
            assert time.monotonic() - started < 2
            assert second["data"] == snapshot_to_json(twelve(offset=7))
        finally:
            events.close()


async def test_events_repeat_the_snapshot_every_refresh_without_a_change() -> None:
    async with ClassScreen(FakeClass(twelve()), refresh_s=0.05) as screen:
        events = await asyncio.to_thread(_Events, screen.port)
        try:
            for _ in range(4):
                event = await asyncio.to_thread(events.next)
                assert event["data"] == snapshot_to_json(twelve())
        finally:
            events.close()


async def test_closing_the_screen_ends_open_streams_promptly() -> None:
    screen = ClassScreen(FakeClass(twelve()))
    async with screen:
        events = await asyncio.to_thread(_Events, screen.port)
        await asyncio.to_thread(events.next)
        started = time.monotonic()
    try:
        assert time.monotonic() - started < 2
        rest = await asyncio.to_thread(events.response.read)  # the stream ended, not cut
        assert rest == b""
    finally:
        events.close()
    # Reusable: the same screen serves again on a fresh port.
    async with screen:
        assert (await asyncio.to_thread(_get, screen.port, "/"))[0] == 200


async def test_unknown_paths_and_other_methods_are_refused() -> None:
    async with ClassScreen(FakeClass(twelve())) as screen:
        assert (await asyncio.to_thread(_get, screen.port, "/nope"))[0] == 404
        assert (await asyncio.to_thread(_get, screen.port, "/../pyproject.toml"))[0] == 404
        assert (await asyncio.to_thread(_get, screen.port, "/snapshot.json", "POST"))[0] == 405


async def test_a_busy_port_is_one_error_that_says_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CompanionError, match=rf"cannot listen on 127.0.0.1:{port}.*free one"):
            async with ClassScreen(FakeClass(twelve()), port=port):
                pass


class _Failing:
    """A source whose change feed breaks after the first change."""

    def __init__(self) -> None:
        self.value = twelve()

    def snapshot(self) -> ClassSnapshot:
        return self.value

    async def events(self) -> AsyncIterator[object]:
        yield None
        raise RuntimeError("the class's event feed broke")


async def test_a_broken_change_feed_is_logged_and_the_page_still_refreshes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = _Failing()
    async with ClassScreen(source, refresh_s=0.05) as screen:
        await asyncio.sleep(0.05)
        source.value = dataclasses.replace(twelve(), exercise="Lunges")
        events = await asyncio.to_thread(_Events, screen.port)
        try:
            event = await asyncio.to_thread(events.next)
            assert event["data"]["exercise"] == "Lunges"  # type: ignore[index]
        finally:
            events.close()
    assert "stopped following the class's changes" in caplog.text
    assert "the class's event feed broke" in caplog.text


# -- packaging: an extra of its own, loaded only when asked for --------------------------------


def test_importing_the_screen_without_uvicorn_names_the_screen_extra() -> None:
    code = _blocker("uvicorn") + (
        "try:\n"
        "    import companion.screen\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name, exc, sep='|')\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "MissingExtraError|uvicorn|the class screen needs the screen extra:"
        " pip install 'companion[screen]'"
    )


def test_import_companion_and_its_cli_do_not_load_the_web_server() -> None:
    code = "import sys, companion, companion.cli\nprint('uvicorn' in sys.modules)"
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_only_the_screen_package_imports_uvicorn() -> None:
    importers = [
        path.relative_to(ROOT).as_posix()
        for path in sorted((ROOT / "companion").rglob("*.py"))
        if "import uvicorn" in path.read_text(encoding="utf-8")
        or "from uvicorn" in path.read_text(encoding="utf-8")
    ]
    assert importers == ["companion/screen/__init__.py", "companion/screen/server.py"]
