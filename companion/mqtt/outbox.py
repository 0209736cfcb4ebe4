"""The relay's persistent outbox: a message is on disk before it is published.

A row is written before its publish and marked acknowledged when the broker's
PUBACK arrives. Unacknowledged rows survive a broker restart, a network blip
and a host restart, and are published again in their original order. A PUBACK
only means "in the broker's memory", so acknowledged rows are kept for a short
replay window and published again after an unexpected disconnect: subscribers
see a message at least once and drop duplicates by event number.

Nothing slow happens on the relay's hot path: a write is one transaction in
the WAL (no fsync at ``synchronous=NORMAL``), SQLite's automatic checkpoint
(which fsyncs inline, a 4-5 ms stall every ~1000 pages) is off, and the relay
calls :meth:`Outbox.checkpoint` from a worker thread instead, with its own
connection (:mod:`companion.wal`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from ..errors import StoreError
from ..store import open_private_database
from ..wal import WalCheckpoints, tune

__all__ = ["Outbox", "OutboxMessage"]

_BUSY_TIMEOUT_S: Final = 1.0  # another process holding the file blocks the loop at most this

_INSERT: Final = "INSERT INTO outbox (owner, topic, payload, qos, retain) VALUES (?, ?, ?, ?, ?)"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- publish order
    owner TEXT NOT NULL,                   -- the band id whose relay publishes it
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    acked_at REAL                          -- wall-clock seconds; NULL until the PUBACK
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (owner, acked_at, id);
"""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message waiting for (or recently given) the broker's acknowledgement."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    """An SQLite outbox shared by the relays of one host, each reading only its own rows."""

    def __init__(
        self, path: str | Path, owner: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        """``clock`` is the wall clock acknowledgements are stamped with (a test speeds it up)."""
        self.path = Path(path)
        self.owner = owner
        self._clock = clock
        # The relays of one host share one outbox file, each with its own Outbox, started
        # together so that their maintenance ticks coincide: one checkpoint for them all.
        self._checkpoints = WalCheckpoints.of(self.path)
        # 0600 in a 0700 folder, as the history: the rows are session events and heart rate.
        self._db = open_private_database(self.path, what="MQTT outbox", make_parents=True)
        try:
            self._tune()
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"cannot open the MQTT outbox {self.path}: {exc}. Move the file aside "
                "(it only holds messages not yet delivered) or set COMPANION_DATA_DIR"
            ) from exc

    def _tune(self) -> None:
        tune(self._db)  # no inline checkpoint: see checkpoint()
        self._db.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")

    def put(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Store a message to publish; returns its id (its place in the order)."""
        cursor = self._db.execute(_INSERT, (self.owner, topic, payload, qos, int(retain)))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def pending(self, *, after: int = 0, limit: int = 100) -> list[OutboxMessage]:
        """Unacknowledged messages with an id above ``after``, oldest first."""
        rows = self._db.execute(
            "SELECT id, topic, payload, qos, retain FROM outbox"
            " WHERE owner = ? AND acked_at IS NULL AND id > ? ORDER BY id LIMIT ?",
            (self.owner, after, limit),
        ).fetchall()
        return [OutboxMessage(i, t, bytes(p), q, bool(r)) for i, t, p, q, r in rows]

    def pending_count(self) -> int:
        """How many messages still wait for an acknowledgement."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE owner = ? AND acked_at IS NULL", (self.owner,)
        ).fetchone()
        return int(row[0])

    def ack(self, message_id: int) -> None:
        """The broker acknowledged this message."""
        self.ack_many((message_id,))

    def ack_many(
        self, message_ids: Iterable[int], *, prune_older_than_s: float | None = None
    ) -> None:
        """The broker acknowledged these messages (one transaction for all).

        With ``prune_older_than_s``, :meth:`prune` runs in the same transaction: a
        commit is the dear part of a small write, and the relay prunes as it acknowledges.
        """
        now = self._clock()
        with self._transaction():
            self._db.executemany(
                "UPDATE outbox SET acked_at = ? WHERE id = ?", ((now, i) for i in message_ids)
            )
            if prune_older_than_s is not None:
                self._delete_acked_before(now - prune_older_than_s)

    def count(self) -> int:
        """Every row this owner has, acknowledged or not (what pruning keeps flat)."""
        row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE owner = ?", (self.owner,))
        return int(row.fetchone()[0])

    def replay_recent(self, window_s: float) -> int:
        """Mark messages acknowledged in the last ``window_s`` seconds as pending again.

        Called after an unexpected disconnect: the broker may have died before
        writing them to disk. Returns how many will be published again.
        """
        cursor = self._db.execute(
            "UPDATE outbox SET acked_at = NULL WHERE owner = ? AND acked_at >= ?",
            (self.owner, self._clock() - window_s),
        )
        return cursor.rowcount

    def prune(self, older_than_s: float) -> int:
        """Forget messages acknowledged more than ``older_than_s`` seconds ago; how many."""
        return self._delete_acked_before(self._clock() - older_than_s)

    def _delete_acked_before(self, when: float) -> int:
        cursor = self._db.execute(
            "DELETE FROM outbox WHERE owner = ? AND acked_at < ?", (self.owner, when)
        )
        return cursor.rowcount

    def needs_checkpoint(self) -> bool:
        """Whether the write-ahead log has grown enough to be worth a checkpoint.

        Not while one runs, nor before anything has been written since the last one
        (by this or another relay on the file): the first write after a complete
        checkpoint truncates the WAL.
        """
        return self._checkpoints.due()

    def checkpoint(self) -> None:
        """Copy the WAL into the database (fsyncs): call it off the event loop's thread.

        It opens its own connection, so a worker thread may run it while the
        relay keeps writing; PASSIVE never waits for (or blocks) a writer. If
        another relay's checkpoint of the same file is running, this one returns.
        """
        self._checkpoints.run()

    def close(self) -> None:
        """Close the database (pending messages stay for the next run)."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
