"""A class's roster: who wears which band, and what sets their heart-rate zones.

A TOML file, one ``[[participant]]`` table each::

    [[participant]]
    band = "C3:52:11:8A:0F:21"   # address or name, as for --band
    name = "Ana"
    age = 34                     # zones from 220 - age ...
    # max_hr = 182               # ... or from a measured max

:func:`parse_roster` is pure (parsed TOML in, :class:`~companion.group.Participant`
out); :func:`load_roster` reads the file. Every mistake is a :class:`RosterError` that
names the file, the entry and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .errors import CompanionError
from .group import Participant
from .toml_file import read_toml

__all__ = ["MAX_PARTICIPANTS", "RosterError", "load_roster", "parse_roster"]

MAX_PARTICIPANTS: Final = 200  # as many bands as a class takes on the command line
_KEYS: Final = frozenset({"band", "name", "age", "max_hr"})
_MAX_NAME: Final = 40  # fits a tile on the class screen


class RosterError(CompanionError):
    """A roster file is invalid; the message names the entry, the field and the fix."""


def parse_roster(
    data: Mapping[str, Any], source: str = "<roster>", *, bands_given: bool = True
) -> list[Participant]:
    """The participants of roster ``data`` (parsed TOML); ``source`` names it in errors.

    ``bands_given=False`` (virtual bands, numbered by the class): an entry's ``band``
    may be left out, and the entries name the bands in order.
    """
    unknown = set(data) - {"participant"}
    if unknown:
        raise RosterError(
            f"{source}: unknown key {sorted(unknown)[0]!r}; a roster holds only "
            "[[participant]] tables"
        )
    entries = data.get("participant")
    if not isinstance(entries, list) or not entries:
        raise RosterError(
            f"{source}: no participants; add one [[participant]] table per person, "
            'e.g. band = "C3:52:11:8A:0F:21" and name = "Ana"'
        )
    if len(entries) > MAX_PARTICIPANTS:
        raise RosterError(
            f"{source}: {len(entries)} participants; a class takes at most {MAX_PARTICIPANTS}"
        )
    participants = [
        _participant(entry, f"{source}: participant {number}", bands_given)
        for number, entry in enumerate(entries, start=1)
    ]
    seen: set[str] = set()
    for band in (p.target for p in participants if p.target):
        if band in seen:
            raise RosterError(f"{source}: band {band!r} is on the roster twice: one per person")
        seen.add(band)
    return participants


def load_roster(path: str | Path, *, bands_given: bool = True) -> list[Participant]:
    """Load and check a roster file (see :func:`parse_roster`)."""
    path = Path(path)
    data = read_toml(path, "the roster", RosterError)
    return parse_roster(data, str(path), bands_given=bands_given)


def _participant(entry: object, where: str, bands_given: bool) -> Participant:
    if not isinstance(entry, dict):
        raise RosterError(f"{where}: not a table; write it as [[participant]]")
    unknown = set(entry) - _KEYS
    if unknown:
        raise RosterError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; the keys are band, name, age, max_hr"
        )
    band = entry.get("band", "")
    if not isinstance(band, str) or (bands_given and not band.strip()):
        raise RosterError(f'{where}: band must be its address or name, e.g. band = "Ana\'s band"')
    name = entry.get("name", "")
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
        raise RosterError(f'{where}: name must be 1 to {_MAX_NAME} characters, e.g. name = "Ana"')
    age = _whole(entry, "age", where, 5, 110, "e.g. age = 34")
    max_hr = _whole(entry, "max_hr", where, 100, 240, "a measured max, e.g. max_hr = 182")
    return Participant(band.strip(), name.strip(), age, max_hr)


def _whole(
    entry: dict[str, Any], key: str, where: str, low: int, high: int, hint: str
) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RosterError(f"{where}: {key} must be a whole number from {low} to {high}, {hint}")
    return value
