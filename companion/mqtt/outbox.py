"""The relay's persistent outbox: a message is on disk before it is published.

A row is written before its publish and marked acknowledged when the broker's
PUBACK arrives. Unacknowledged rows survive a broker restart, a network blip
and a host restart, and are published again in their original order. A PUBACK
only means "in the broker's memory", so acknowledged rows are kept for a short
replay window and published again after an unexpected disconnect: subscribers
see a message at least once and drop duplicates by event number.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from ..errors import StoreError
from ..store import open_private_database

__all__ = ["Outbox", "OutboxMessage"]

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

    def __init__(self, path: str | Path, owner: str) -> None:
        self.path = Path(path)
        self.owner = owner
        # 0600 in a 0700 folder, as the history: the rows are session events and heart rate.
        self._db = open_private_database(self.path, what="MQTT outbox", make_parents=True)
        try:
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"cannot open the MQTT outbox {self.path}: {exc}. Move the file aside "
                "(it only holds messages not yet delivered) or set COMPANION_DATA_DIR"
            ) from exc

    def put(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Store a message to publish; returns its id (its place in the order)."""
        cursor = self._db.execute(
            "INSERT INTO outbox (owner, topic, payload, qos, retain) VALUES (?, ?, ?, ?, ?)",
            (self.owner, topic, payload, qos, int(retain)),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

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
        self._db.execute("UPDATE outbox SET acked_at = ? WHERE id = ?", (time.time(), message_id))

    def replay_recent(self, window_s: float) -> int:
        """Mark messages acknowledged in the last ``window_s`` seconds as pending again.

        Called after an unexpected disconnect: the broker may have died before
        writing them to disk. Returns how many will be published again.
        """
        cursor = self._db.execute(
            "UPDATE outbox SET acked_at = NULL WHERE owner = ? AND acked_at >= ?",
            (self.owner, time.time() - window_s),
        )
        return cursor.rowcount

    def prune(self, older_than_s: float) -> None:
        """Forget messages acknowledged more than ``older_than_s`` seconds ago."""
        self._db.execute(
            "DELETE FROM outbox WHERE owner = ? AND acked_at < ?",
            (self.owner, time.time() - older_than_s),
        )

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
