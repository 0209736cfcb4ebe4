"""Checkpoints of an SQLite write-ahead log, run off the thread that writes the file.

SQLite's automatic checkpoint runs inside the commit that takes the WAL past
~1000 pages and fsyncs the database there: on an event loop that is a 4-5 ms
stall on ~2 % of writes, which is where a relay's p99 sat. The history and the
outbox turn it off (:func:`tune`), and a worker thread with its own connection
copies the WAL into the database instead; PASSIVE mode never waits for, nor
blocks, the writer. A crash during a checkpoint loses nothing: every committed
row is in the WAL until the checkpoint has copied it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import ClassVar, Final

__all__ = ["WalCheckpoints", "tune"]

_log = logging.getLogger(__name__)

CHECKPOINT_BYTES: Final = 1 << 20  # checkpoint once the WAL passes 1 MB
_BUSY_TIMEOUT_S: Final = 1.0


def tune(db: sqlite3.Connection) -> None:
    """Turn SQLite's inline checkpoint off on ``db``, whose file :class:`WalCheckpoints` keeps."""
    db.execute("PRAGMA wal_autocheckpoint=0")
    # SQLite reuses a checkpointed WAL without shrinking it, so its size, which due() reads,
    # would stay past the threshold for good and every writer of the file would checkpoint
    # every second (measured: a third of a 50-band host's CPU). With this the first write
    # after a complete checkpoint truncates it.
    db.execute("PRAGMA journal_size_limit=0")


class WalCheckpoints:
    """The checkpoints of one database file, shared by every connection of this process to it.

    Many writers may share a file (the relays of one host share one outbox, its
    sessions one history), and writers started together check together: one
    object per file runs one checkpoint at a time, and none again before
    anything has been written since the last.
    """

    _of_file: ClassVar[dict[Path, WalCheckpoints]] = {}
    _of_file_lock: ClassVar = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._wal = f"{path}-wal"
        self._running = threading.Lock()
        self._left: tuple[int, int] | None = None  # the WAL's (size, mtime) the last one left

    @classmethod
    def of(cls, path: str | Path) -> WalCheckpoints:
        """The checkpoints of the database at ``path`` (one object per file)."""
        key = Path(path).resolve()
        with cls._of_file_lock:
            if key not in cls._of_file:
                cls._of_file[key] = cls(key)
            return cls._of_file[key]

    def due(self) -> bool:
        """Whether the WAL has grown enough to be worth a checkpoint (one ``stat``).

        Not while one runs, nor before anything has been written since the last
        one: the first write after a complete checkpoint truncates the WAL.
        """
        try:
            wal = os.stat(self._wal)
        except OSError:
            return False
        if wal.st_size < CHECKPOINT_BYTES or self._running.locked():
            return False
        return self._left != (wal.st_size, wal.st_mtime_ns)

    def run(self) -> None:
        """Copy the WAL into the database (it fsyncs): call it off the event loop's thread.

        Returns at once if another checkpoint of the file is running. A failure
        (a full disk, the file gone) is logged: the rows stay in the WAL and the
        next checkpoint tries again.
        """
        if not self._running.acquire(blocking=False):
            return
        try:
            # mode=rw: a file removed meanwhile is an error, not a new empty database
            uri = f"{self.path.as_uri()}?mode=rw"
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_S)) as db:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            wal = os.stat(self._wal)
            self._left = (wal.st_size, wal.st_mtime_ns)
        except (sqlite3.Error, OSError) as exc:
            _log.warning("checkpoint of %s failed (its rows stay in the WAL): %s", self.path, exc)
        finally:
            self._running.release()

    def start_if_due(self) -> None:
        """Run a checkpoint in a thread of its own if one is due; returns at once."""
        if self.due():
            threading.Thread(target=self.run, name="companion-wal-checkpoint", daemon=True).start()
