"""A subprocess's output, line by line as it comes, for tests that react to what it prints.

Why a thread and not ``select`` on the pipe: ``readline`` on a text pipe reads
a whole chunk into Python's buffer, so after it the lines already buffered are
invisible to ``select``, which waits for the *next* bytes. A test waiting for
one line then sees it only when the process prints again, seconds late.
"""

from __future__ import annotations

import contextlib
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

__all__ = ["OutputLines", "band_server"]


class OutputLines:
    """The stdout lines of ``process`` (opened with ``stdout=PIPE, text=True``)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None, "open the process with stdout=subprocess.PIPE"
        self.process = process
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []  # every line handed out so far
        self._reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:  # closed at the end of output: nobody else reads it
            for line in stream:
                self._lines.put(line)
        self._lines.put("")  # end of output

    def next(self, timeout: float) -> str:
        """The next line ("" once the output has ended); TimeoutError if none comes."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"no line from {self.process.args} within {timeout} s; it said:\n"
                + "".join(self.seen)
            ) from None
        self.seen.append(line)
        return line

    def until(self, text: str, timeout: float) -> list[str]:
        """Lines up to the one containing ``text``; AssertionError if the output ends first."""
        start = len(self.seen)
        while True:
            line = self.next(timeout)
            if not line:
                raise AssertionError(
                    f"{text!r} never came; the process said:\n{''.join(self.seen)}"
                )
            if text in line:
                return self.seen[start:]

    def rest(self, timeout: float) -> str:
        """Everything the process prints until it exits (within ``timeout`` seconds)."""
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        chunks = []
        while not self._lines.empty():
            chunks.append(self.next(0))
        return "".join(chunks)


@contextlib.contextmanager
def band_server(*options: str, timeout_s: float = 30.0) -> Iterator[str]:
    """``companion sim --port 0 --auto-confirm OPTIONS`` in its own process: its sim:// URL.

    --auto-confirm: no wearer at this terminal confirms the pairing. Stopped with
    Ctrl-C (SIGINT) at the end, as a person would.
    """
    command = [sys.executable, "-m", "companion", "sim", "--port", "0", "--auto-confirm"]
    with subprocess.Popen([*command, *options], stdout=subprocess.PIPE, text=True) as server:
        try:
            line = OutputLines(server).next(timeout_s)
            url = re.search(r"sim://127\.0\.0\.1:\d+", line)
            assert url is not None, line
            yield url.group(0)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=10)
