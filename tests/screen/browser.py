"""Headless Chromium driven over the DevTools protocol on a pipe: no driver, no library.

``--remote-debugging-pipe`` makes the browser read commands on fd 3 and write
answers on fd 4, each a JSON object ended by a NUL byte. Blocking: call it
from a thread while the page's server runs on the event loop.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

WIDTH, HEIGHT = 1920, 1080


def chromium() -> str | None:
    """The installed browser (Debian's ``chromium``), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _above_4(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 5)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium with one page of ``WIDTH`` x ``HEIGHT``, closed on exit."""

    def __init__(self, executable: str, *, timeout_s: float = 20.0) -> None:
        self._executable = executable
        self._timeout_s = timeout_s
        self._next_id = 0
        self._buffer = b""
        self._session: str | None = None

    def __enter__(self) -> Self:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()
        # Numbered above 4, so that putting them on 3 and 4 never closes one of them.
        commands_read, answers_write = (_above_4(commands_read), _above_4(answers_write))
        # The browser expects its ends of the pipes as fd 3 (commands) and fd 4 (answers):
        # bash puts them there in the child alone.
        redirect = f'exec "$@" 3<&{commands_read} 4>&{answers_write}'
        self._process = subprocess.Popen(
            [
                "bash",  # not dash: it cannot name a descriptor above 9
                "-c",
                f"{redirect} {commands_read}<&- {answers_write}>&-",
                "bash",
                self._executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}",
                f"--window-size={WIDTH},{HEIGHT}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(commands_read, answers_write),
        )
        os.close(commands_read)
        os.close(answers_write)
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self._session = attached["sessionId"]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._session = None
            self.call("Browser.close")
        except (OSError, TimeoutError):
            pass  # it is killed below either way
        finally:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            os.close(self._commands)
            os.close(self._answers)
            self._profile.cleanup()

    def call(self, method: str, **params: Any) -> Any:
        """Send one DevTools command and return its result (events in between are skipped)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self._timeout_s
        while True:
            while b"\0" not in self._buffer:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise TimeoutError(f"chromium did not answer {method}")
                chunk = os.read(self._answers, 1 << 16)
                if not chunk:
                    raise OSError("chromium closed its DevTools pipe")
                self._buffer += chunk
            raw, _, self._buffer = self._buffer.partition(b"\0")
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def goto(self, url: str) -> None:
        """Load ``url`` in the page."""
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout_s: float = 10.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never made {expression!r} true")
            time.sleep(0.05)

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole ``WIDTH`` x ``HEIGHT`` page."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
