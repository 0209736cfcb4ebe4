"""Session history in SQLite: every session, event and heart-rate sample.

Plain ``sqlite3`` on purpose: one write is a few microseconds in WAL mode, far
below anything a workout produces, and each record is committed at once so a
crash loses nothing already recorded. The schema is documented in
``docs/store.md`` and versioned with ``PRAGMA user_version``.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from platformdirs import user_data_dir

from .errors import StoreError
from .events import (
    CueFired,
    CueWarning,
    HeartRate,
    RoundDone,
    SessionEvent,
    event_from_dict,
    event_to_dict,
)
from .plan import Plan

__all__ = ["SessionRecord", "SessionSummary", "Store", "default_store_path"]

SCHEMA_VERSION: Final = 1
_ZONES: Final = ((0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 10.0))

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    band_id TEXT NOT NULL,
    plan_name TEXT NOT NULL,
    plan_title TEXT NOT NULL,
    rounds_planned INTEGER NOT NULL,
    step_names TEXT NOT NULL,            -- JSON list of the plan's step names
    started_at TEXT NOT NULL,            -- ISO 8601, UTC
    ended_at TEXT,                       -- NULL while running (or after a crash)
    outcome TEXT                         -- "done", "stopped: pain", "link lost: ..."
);
CREATE TABLE IF NOT EXISTS events (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    number INTEGER NOT NULL,             -- 1, 2, 3... within the session
    at TEXT NOT NULL,                    -- wall clock, ISO 8601 UTC
    type TEXT NOT NULL,                  -- "cue_fired", "heart_rate", ...
    payload TEXT NOT NULL,               -- JSON of the event's fields
    PRIMARY KEY (session_id, number)
);
CREATE TABLE IF NOT EXISTS hr_samples (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    number INTEGER NOT NULL,
    t REAL NOT NULL,                     -- host clock, seconds
    bpm INTEGER NOT NULL,
    rr_ms TEXT NOT NULL,                 -- JSON list of RR intervals in ms
    contact INTEGER,                     -- 1, 0, or NULL when the sensor cannot tell
    PRIMARY KEY (session_id, number)
);
CREATE TABLE IF NOT EXISTS band_sessions (  -- the band's identity of each session's workout
    session_id TEXT PRIMARY KEY REFERENCES sessions(id),
    band_id TEXT NOT NULL,
    band_session INTEGER NOT NULL,       -- the session_id the host sent in START (u32)
    plan_id TEXT NOT NULL                -- hex id of the plan on the band
);
"""


def default_store_path() -> Path:
    """Where sessions are kept: ``$COMPANION_DATA_DIR`` or the user's data directory."""
    base = os.environ.get("COMPANION_DATA_DIR") or user_data_dir("companion", appauthor=False)
    return Path(base) / "sessions.sqlite3"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One recorded session, as listed by ``companion history``."""

    id: str
    band_id: str
    plan_name: str
    plan_title: str
    rounds_planned: int
    step_names: tuple[str, ...]
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """The figures of one session: duration, rounds, cue timing, heart rate."""

    session_id: str
    outcome: str
    duration_s: float
    rounds_done: int
    cues: int
    cue_warnings: int
    cue_error_p50_ms: float | None
    cue_error_p99_ms: float | None
    cue_error_max_ms: float | None
    hr_avg: float | None
    hr_max: int | None
    zone_seconds: tuple[float, ...]  # time in each of 5 zones of max HR (50-60 % ... 90 %+)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class Store:
    """The session history database; use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer companion (schema {version}); "
                    "upgrade companion to read it"
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot open the session history {self.path}: {exc}. If the file is damaged, "
                "move it aside (sessions already exported stay safe) or set COMPANION_DATA_DIR"
            ) from exc

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # -- writing --------------------------------------------------------------------------

    def begin_session(
        self, session_id: str, band_id: str, plan: Plan, started_at: datetime
    ) -> None:
        """Record that a session started."""
        self._db.execute(
            "INSERT OR IGNORE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            (
                session_id,
                band_id,
                plan.name,
                plan.title,
                plan.rounds,
                json.dumps([s.name for s in plan.steps]),
                started_at.isoformat(),
            ),
        )

    def link_band_session(
        self, session_id: str, band_id: str, band_session: int, plan_id: bytes
    ) -> None:
        """Remember which band workout ``session_id`` is, so a restarted host can adopt it."""
        self._db.execute(
            "INSERT OR REPLACE INTO band_sessions VALUES (?, ?, ?, ?)",
            (session_id, band_id, band_session, plan_id.hex()),
        )

    def find_band_session(self, band_id: str, band_session: int) -> SessionRecord | None:
        """The session recorded for band workout ``band_session`` on ``band_id``, if any."""
        row = self._db.execute(
            "SELECT s.* FROM sessions s JOIN band_sessions b ON b.session_id = s.id "
            "WHERE b.band_id = ? AND b.band_session = ?",
            (band_id, band_session),
        ).fetchone()
        return self._record(row) if row is not None else None

    def last_event_number(self, session_id: str) -> int:
        """The number of the last event recorded for ``session_id`` (0 if none)."""
        row = self._db.execute(
            "SELECT MAX(number) FROM events WHERE session_id = ?", (session_id,)
        ).fetchone()
        return int(row[0] or 0)

    def record(self, event: SessionEvent) -> None:
        """Record one event; a replayed event (same session and number) is stored once."""
        payload = event_to_dict(event.event)
        self._db.execute(
            "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)",
            (event.session_id, event.number, event.at.isoformat(), event.type, json.dumps(payload)),
        )
        inner = event.event
        if isinstance(inner, HeartRate):
            self._db.execute(
                "INSERT OR IGNORE INTO hr_samples VALUES (?, ?, ?, ?, ?, ?)",
                (
                    event.session_id,
                    event.number,
                    inner.t,
                    inner.bpm,
                    json.dumps(list(inner.rr_ms)),
                    None if inner.contact is None else int(inner.contact),
                ),
            )

    def end_session(self, session_id: str, ended_at: datetime, outcome: str) -> None:
        """Record how and when a session ended."""
        self._db.execute(
            "UPDATE sessions SET ended_at = ?, outcome = ? WHERE id = ?",
            (ended_at.isoformat(), outcome, session_id),
        )

    # -- reading ----------------------------------------------------------------------------

    def sessions(self) -> list[SessionRecord]:
        """Every recorded session, newest first."""
        rows = self._db.execute("SELECT * FROM sessions ORDER BY started_at DESC").fetchall()
        return [self._record(row) for row in rows]

    def session(self, id_or_prefix: str) -> SessionRecord:
        """A session by its id or a unique prefix of it."""
        rows = self._db.execute(
            "SELECT * FROM sessions WHERE id LIKE ? ORDER BY started_at DESC",
            (id_or_prefix.replace("%", "") + "%",),
        ).fetchall()
        if len(rows) != 1:
            problem = "no session" if not rows else f"{len(rows)} sessions"
            raise StoreError(
                f"{problem} matching {id_or_prefix!r} in {self.path}; "
                "`companion history` lists the sessions and their ids"
            )
        return self._record(rows[0])

    @staticmethod
    def _record(row: tuple[str, ...]) -> SessionRecord:
        return SessionRecord(
            id=row[0],
            band_id=row[1],
            plan_name=row[2],
            plan_title=row[3],
            rounds_planned=int(row[4]),
            step_names=tuple(json.loads(row[5])),
            started_at=datetime.fromisoformat(row[6]),
            ended_at=datetime.fromisoformat(row[7]) if row[7] else None,
            outcome=row[8],
        )

    def events(self, session_id: str) -> list[SessionEvent]:
        """Every event of a session, in order."""
        record = self.session(session_id)
        rows = self._db.execute(
            "SELECT number, at, payload FROM events WHERE session_id = ? ORDER BY number",
            (record.id,),
        ).fetchall()
        return [
            SessionEvent(
                band_id=record.band_id,
                session_id=record.id,
                number=number,
                at=datetime.fromisoformat(at),
                event=event_from_dict(json.loads(payload)),
            )
            for number, at, payload in rows
        ]

    def heart_rate(self, session_id: str) -> list[HeartRate]:
        """The heart-rate samples of a session, in order."""
        return [e.event for e in self.events(session_id) if isinstance(e.event, HeartRate)]

    def summary(self, session_id: str, *, max_hr: int = 190) -> SessionSummary:
        """Duration, rounds done, cue timing error and heart-rate figures of a session."""
        record = self.session(session_id)
        events = [e.event for e in self.events(record.id)]
        errors = [abs(e.error_ms) for e in events if isinstance(e, CueFired) and e.cue_id != 0xFFFF]
        heart = [e for e in events if isinstance(e, HeartRate)]
        zones = [0.0] * len(_ZONES)
        for sample, following in itertools.pairwise(heart):
            fraction = sample.bpm / max_hr
            for index, (low, high) in enumerate(_ZONES):
                if low <= fraction < high:
                    zones[index] += following.t - sample.t
        times = [getattr(e, "t", None) for e in events]
        stamps = [t for t in times if isinstance(t, float)]
        return SessionSummary(
            session_id=record.id,
            outcome=record.outcome or "unfinished",
            duration_s=(max(stamps) - min(stamps)) if stamps else 0.0,
            rounds_done=sum(isinstance(e, RoundDone) for e in events),
            cues=len(errors),
            cue_warnings=sum(isinstance(e, CueWarning) for e in events),
            cue_error_p50_ms=statistics.median(errors) if errors else None,
            cue_error_p99_ms=_percentile(errors, 0.99) if errors else None,
            cue_error_max_ms=max(errors) if errors else None,
            hr_avg=statistics.fmean(h.bpm for h in heart) if heart else None,
            hr_max=max(h.bpm for h in heart) if heart else None,
            zone_seconds=tuple(zones),
        )
