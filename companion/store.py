"""Session history in SQLite: every session, event and heart-rate sample.

Plain ``sqlite3`` on purpose: one write is a few microseconds in WAL mode, far
below anything a workout produces, and each record is committed at once so a
crash loses nothing already recorded. A host of hundreds of bands may commit
events in groups instead (``commit_every_s``): a commit per event then costs
more than the event's rows. The schema is documented in ``docs/store.md`` and
versioned with ``PRAGMA user_version``.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import logging
import os
import sqlite3
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from platformdirs import user_data_dir

from .errors import StoreError
from .events import (
    CueFired,
    CueTiming,
    CueWarning,
    HeartRate,
    RoundDone,
    SessionEvent,
    event_from_dict,
    event_to_dict,
)
from .plan import Plan
from .wal import WalCheckpoints, tune

__all__ = [
    "SessionRecord",
    "SessionSummary",
    "Store",
    "default_store_path",
    "open_private_database",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
_RESERVE_BYTES: Final = 64 * 1024  # room for the last writes of a session on a full disk
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
CREATE TABLE IF NOT EXISTS class_sessions (  -- the group class each class session is part of
    session_id TEXT PRIMARY KEY REFERENCES sessions(id),
    class_id TEXT NOT NULL
);
"""


def default_store_path() -> Path:
    """Where sessions are kept: ``$COMPANION_DATA_DIR`` or the user's data directory."""
    base = os.environ.get("COMPANION_DATA_DIR") or user_data_dir("companion", appauthor=False)
    return Path(base) / "sessions.sqlite3"


_FIX: Final = "set COMPANION_DATA_DIR to a folder of yours (e.g. ~/companion)"


def _folder_error(folder: Path, what: str, exc: OSError) -> StoreError:
    """What went wrong making ``folder``, why, and what to do, for a person."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        why = f"{folder} is a file, not a folder"
        fix = f"move that file aside, or {_FIX}"
    elif isinstance(exc, FileNotFoundError):
        why = f"the folder {folder.parent} does not exist"
        fix = f"create it (mkdir -p {folder.parent}), or fix the path"
    elif exc.errno == errno.EROFS:
        why = f"{folder} is on a read-only file system"
        fix = _FIX
    elif isinstance(exc, PermissionError):
        why = f"you may not create {folder} (permission denied)"
        fix = _FIX
    elif exc.errno == errno.ENOSPC:
        why = f"the disk holding {folder} is full"
        fix = f"free some space, or {_FIX}"
    else:
        why = f"{folder}: {exc.strerror or exc}"
        fix = _FIX
    return StoreError(f"cannot keep the {what} in {folder}: {why}. Fix: {fix}")


def _file_error(path: Path, what: str, exc: OSError) -> StoreError:
    folder = path.parent
    if isinstance(exc, IsADirectoryError):
        why = f"{path} is a folder, not a file"
        fix = f"move it aside, or {_FIX}"
    elif isinstance(exc, NotADirectoryError):
        return _folder_error(folder, what, exc)
    elif exc.errno == errno.EROFS:
        why = f"{folder} is on a read-only file system"
        fix = _FIX
    elif isinstance(exc, PermissionError):
        owner = "the file" if path.exists() else "the folder"
        why = f"you may not write {owner} {path if path.exists() else folder} (read-only)"
        fix = f"make it writable (chmod u+w {path if path.exists() else folder}), or {_FIX}"
    elif exc.errno == errno.ENOSPC:
        why = f"the disk holding {folder} is full"
        fix = f"free some space, or {_FIX}"
    else:
        why = f"{path}: {exc.strerror or exc}"
        fix = _FIX
    return StoreError(f"cannot open the {what} {path}: {why}. Fix: {fix}")


def open_private_database(
    path: Path, *, what: str, create: bool = True, make_parents: bool = False
) -> sqlite3.Connection:
    """An SQLite file readable by its owner alone (0600 in a 0700 folder): it holds health data.

    The file is created by the host itself, before SQLite opens it, so that an
    unusable data folder (missing, read-only, a regular file, a full disk) is
    reported as what it is instead of SQLite's "unable to open database file".
    With ``create=False`` a missing file is an error and nothing is created.
    SQLite gives the ``-wal`` and ``-shm`` files the main file's permissions.
    """
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise _folder_error(folder, what, FileExistsError(errno.EEXIST, "File exists"))
    if not create and not path.exists():
        raise StoreError(
            f"there is no {what} at {path}: nothing has been recorded there. "
            "Fix: check the path (sessions are recorded by `companion run`)"
        )
    if create:
        if not folder.is_dir():
            try:
                folder.mkdir(mode=0o700, parents=make_parents)
            except OSError as exc:
                raise _folder_error(folder, what, exc) from exc
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise _file_error(path, what, exc) from exc
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.DatabaseError as exc:
        raise _database_error(path, what, exc) from exc
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a record survives a process crash; only a power cut may lose the last ones.
        db.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.DatabaseError as exc:
        db.close()
        raise _database_error(path, what, exc) from exc
    return db


def _database_error(path: Path, what: str, exc: sqlite3.DatabaseError) -> StoreError:
    """SQLite's own failure, said for a person; "damaged" only when the file is."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return StoreError(
            f"cannot read the {what} {path}: the file is damaged or not a companion file "
            f"({exc}). Fix: move it aside (sessions already exported stay safe), or {_FIX}"
        )
    if code == sqlite3.SQLITE_FULL:
        why, fix = f"the disk holding {path.parent} is full", f"free some space, or {_FIX}"
    elif code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM):
        why = f"{path} or its folder is read-only ({exc})"
        fix = f"make both writable (chmod u+w), or {_FIX}"
    else:
        why, fix = f"{exc}", f"check the disk, or {_FIX}"
    return StoreError(f"cannot use the {what} {path}: {why}. Fix: {fix}")


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
    # Host-clock seconds per real second (10 for a `--speed 10` demo). The cue errors
    # above are real milliseconds already; durations and times are workout time.
    speed: float = 1.0
    # Who timed the cues: the band (its own timestamps: as fired) or this host (the
    # write's confirmation: delivered, not felt).
    cue_timing: CueTiming = CueTiming.BAND


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


_NO_BOUND: Final = 2**63 - 1  # above every event number (SQLite's largest integer)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_Rows = tuple[tuple[object, ...], tuple[object, ...] | None]  # an event's row, its sample's


def _rows(event: SessionEvent) -> _Rows:
    """The ``events`` row of ``event`` and, for heart rate, its ``hr_samples`` row."""
    row = (
        event.session_id,
        event.number,
        event.at.isoformat(),
        event.type,
        json.dumps(event_to_dict(event.event)),
    )
    inner = event.event
    if not isinstance(inner, HeartRate):
        return row, None
    sample = (
        event.session_id,
        event.number,
        inner.t,
        inner.bpm,
        json.dumps(list(inner.rr_ms)),
        None if inner.contact is None else int(inner.contact),
    )
    return row, sample


class Store:
    """The session history database; use as a context manager or call :meth:`close`."""

    def __init__(
        self, path: str | Path | None = None, *, create: bool = True, commit_every_s: float = 0.0
    ) -> None:
        """Open the history at ``path`` (default: :func:`default_store_path`).

        ``create=False`` opens an existing history only (to read it): a
        missing file is a :class:`StoreError` and no file is made.

        ``commit_every_s`` > 0 commits the events recorded from an event loop
        in groups, at most that long after the first of a group (any other call
        commits at once, before it reads or writes). An event is then durable
        only at that commit: :meth:`after_commit` says when, and a
        :class:`~companion.session.Session` lets the band acknowledge it then.
        """
        self._commit_every_s = commit_every_s
        self._waiting: list[_Rows] = []  # recorded, not yet committed
        self._after_commit: dict[Callable[[StoreError | None], None], None] = {}  # each once
        self._commit_timer: asyncio.TimerHandle | None = None
        self.path = Path(path) if path is not None else default_store_path()
        # The platform's own data folder may need its parents (~/.local/share); a folder
        # the user named must have an existing parent, or the name probably has a typo.
        parents = path is None and not os.environ.get("COMPANION_DATA_DIR")
        self._db = open_private_database(
            self.path, what="session history", create=create, make_parents=parents
        )
        # Every sample is committed at once (a crash loses nothing recorded), so SQLite's
        # inline checkpoint would stall the event loop on ~2 % of them: a thread does it.
        self._checkpoints = WalCheckpoints.of(self.path)
        try:
            tune(self._db)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer companion (schema {version}); "
                    "upgrade companion to read it"
                )
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise _database_error(self.path, "session history", exc) from exc
        except StoreError:
            self._db.close()
            raise

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
        """Commit what waits for its group, then close the database."""
        try:
            self.commit()
        finally:
            self._release_reserve()
            self._db.close()

    @property
    def _sql(self) -> sqlite3.Connection:
        """The connection, once every recorded event is committed (reads see them all,
        writes come after them)."""
        if self._waiting:
            self.commit()
        return self._db

    # -- writing --------------------------------------------------------------------------

    def begin_session(
        self, session_id: str, band_id: str, plan: Plan, started_at: datetime
    ) -> None:
        """Record that a session started (and set aside room to record how it ends)."""
        self._write(
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
        self._set_reserve_aside()

    def link_band_session(
        self, session_id: str, band_id: str, band_session: int, plan_id: bytes
    ) -> None:
        """Remember which band workout ``session_id`` is, so a restarted host can adopt it."""
        self._sql.execute(
            "INSERT OR REPLACE INTO band_sessions VALUES (?, ?, ?, ?)",
            (session_id, band_id, band_session, plan_id.hex()),
        )

    def link_class_session(self, session_id: str, class_id: str) -> None:
        """Remember that ``session_id`` is a participant's in group class ``class_id``, so
        a class run again after its host was killed resumes it (and a lone run's does not)."""
        self._sql.execute(
            "INSERT OR REPLACE INTO class_sessions VALUES (?, ?)", (session_id, class_id)
        )

    def class_of(self, session_id: str) -> str | None:
        """The group class ``session_id`` was part of, or None for a session of its own."""
        row = self._sql.execute(
            "SELECT class_id FROM class_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return str(row[0]) if row is not None else None

    def find_band_session(self, band_id: str, band_session: int) -> SessionRecord | None:
        """The session recorded for band workout ``band_session`` on ``band_id``, if any."""
        row = self._sql.execute(
            "SELECT s.* FROM sessions s JOIN band_sessions b ON b.session_id = s.id "
            "WHERE b.band_id = ? AND b.band_session = ?",
            (band_id, band_session),
        ).fetchone()
        return self._record(row) if row is not None else None

    def last_event_number(self, session_id: str) -> int:
        """The number of the last event recorded for ``session_id`` (0 if none)."""
        row = self._sql.execute(
            "SELECT MAX(number) FROM events WHERE session_id = ?", (session_id,)
        ).fetchone()
        return int(row[0] or 0)

    def record(self, event: SessionEvent) -> None:
        """Record one event; a replayed event (same session and number) is stored once.

        A failed write (disk full, I/O error) raises :class:`StoreError`; what was
        recorded before it stays. With ``commit_every_s``, from an event loop, the
        event waits for its group's commit instead, and a failure of that commit is
        told to the :meth:`after_commit` callbacks waiting for it.
        """
        rows = _rows(event)
        loop = _running_loop() if self._commit_every_s > 0 else None
        if loop is None:
            self._commit([rows])
            return
        self._waiting.append(rows)
        if self._commit_timer is None:
            self._commit_timer = loop.call_later(self._commit_every_s, self._commit_group)

    def after_commit(self, callback: Callable[[StoreError | None], None]) -> None:
        """Call ``callback(None)`` once every event recorded so far is committed (at once
        if none waits), or ``callback(error)`` if that commit failed. A callback already
        waiting is called once."""
        if self._waiting:
            self._after_commit[callback] = None
        else:
            callback(None)

    def commit(self) -> None:
        """Commit every recorded event that waits for its group, now.

        Raises :class:`StoreError` if that fails; the events of the group are then
        not recorded (and their :meth:`after_commit` callbacks are told so).
        """
        if self._commit_timer is not None:
            self._commit_timer.cancel()
            self._commit_timer = None
        waiting, self._waiting = self._waiting, []
        callbacks, self._after_commit = self._after_commit, {}
        error: StoreError | None = None
        try:
            if waiting:
                self._commit(waiting)
        except StoreError as exc:
            error = exc
        for callback in callbacks:
            callback(error)
        if error is not None:
            raise error

    def _commit_group(self) -> None:
        self._commit_timer = None
        try:
            self.commit()
        except StoreError as exc:  # told to the callbacks too, and so to their sessions
            logger.error("recorded events could not be committed: %s", exc)

    def _commit(self, rows: list[_Rows]) -> None:
        events = [row for row, _sample in rows]
        samples = [sample for _row, sample in rows if sample is not None]
        # One transaction: one commit for the group (never half a sample).
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)", events)
                if samples:
                    self._db.executemany(
                        "INSERT OR IGNORE INTO hr_samples VALUES (?, ?, ?, ?, ?, ?)", samples
                    )
        except sqlite3.DatabaseError as exc:
            raise _database_error(self.path, "session history", exc) from exc
        self._checkpoints.start_if_due()

    def end_session(self, session_id: str, ended_at: datetime, outcome: str) -> None:
        """Record how and when a session ended, even on a disk that has just filled up."""
        update = "UPDATE sessions SET ended_at = ?, outcome = ? WHERE id = ?"
        values = (ended_at.isoformat(), outcome, session_id)
        try:
            self._write(update, values)
        except StoreError:
            if not self._release_reserve():
                raise
            self._write(update, values)  # in the room set aside by begin_session
        self._release_reserve()

    @property
    def _reserve(self) -> Path:
        return self.path.with_name(self.path.name + "-reserve")

    def _set_reserve_aside(self) -> None:
        # A full disk fails every write, the last one too: this much room, taken at the
        # start and given back at the end, lets the outcome of the session be written.
        try:
            descriptor = os.open(self._reserve, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as reserve:
                reserve.write(bytes(_RESERVE_BYTES))
        except OSError as exc:
            self._release_reserve()
            raise _file_error(self._reserve, "session history", exc) from exc

    def _release_reserve(self) -> bool:
        try:
            self._reserve.unlink()
        except FileNotFoundError:
            return False
        except OSError:
            return False
        return True

    def _write(self, sql: str, values: tuple[object, ...]) -> None:
        try:
            self._sql.execute(sql, values)
        except sqlite3.DatabaseError as exc:
            raise _database_error(self.path, "session history", exc) from exc
        self._checkpoints.start_if_due()

    # -- reading ----------------------------------------------------------------------------

    def sessions(self) -> list[SessionRecord]:
        """Every recorded session, newest first."""
        rows = self._sql.execute("SELECT * FROM sessions ORDER BY started_at DESC").fetchall()
        return [self._record(row) for row in rows]

    def session(self, id_or_prefix: str) -> SessionRecord:
        """A session by its id or a unique prefix of it."""
        rows = self._sql.execute(
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
        return self.events_between(record.id, record.band_id, 0, None)

    def events_between(
        self, session_id: str, band_id: str, after: int, before: int | None
    ) -> list[SessionEvent]:
        """The events of session ``session_id`` (the whole id) numbered above ``after``
        and below ``before`` (None: no bound), in order.

        For the session that records them: unlike :meth:`events` it reads them before
        the session's own row is written (an event may precede the start).
        """
        rows = self._sql.execute(
            "SELECT number, at, payload FROM events WHERE session_id = ? AND number > ?"
            " AND number < ? ORDER BY number",
            (session_id, after, _NO_BOUND if before is None else before),
        ).fetchall()
        return [
            SessionEvent(
                band_id=band_id,
                session_id=session_id,
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
        checked = [e for e in events if isinstance(e, CueFired) and e.cue_id != 0xFFFF]
        errors = [abs(e.error_ms) for e in checked]
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
            speed=checked[0].speed if checked else 1.0,
            cue_timing=checked[0].timing if checked else CueTiming.BAND,
        )
