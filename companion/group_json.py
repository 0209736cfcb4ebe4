"""A class snapshot as JSON: what the class screen and the class's MQTT state read; pure.

The page is a view of these keys and nothing else, so what it shows is
decided here, where it is tested without a browser: the whole percent of max
heart rate (the same whole percent the zone is cut at), whether a band is to
be brought closer, whether its battery is low, whether its link being down
matters (a band-timed band buzzes on its own without one).
"""

from __future__ import annotations

from typing import Any, Final

from .group_state import ClassSnapshot, ParticipantSnapshot
from .state import CueMode

__all__ = ["COME_CLOSER_AFTER_S", "LIVE_HEART_RATE_S", "LOW_BATTERY_PERCENT", "snapshot_to_json"]

COME_CLOSER_AFTER_S: Final = 20.0
"""Silence after which a tile says "come closer": longer than a band waits for its turn
of the radio when a host rotates more bands than it has links."""

LIVE_HEART_RATE_S: Final = 5.0
"""A reading at most this old (real seconds) is live; an older one, from a rotated band's
last turn, is shown as such (as the session's own freshness rule)."""

LOW_BATTERY_PERCENT: Final = 20
"""At or below this charge a tile says the battery is low: enough for about one class."""


def snapshot_to_json(
    snapshot: ClassSnapshot,
    *,
    come_closer_after_s: float = COME_CLOSER_AFTER_S,
    low_battery_percent: int = LOW_BATTERY_PERCENT,
) -> dict[str, Any]:
    """The snapshot as JSON-ready data, enums as their values; the page reads only these keys.

    ``{"class_id", "plan", "phase", "round", "rounds", "exercise", "next_exercise",
    "step_remaining_s", "elapsed_s", "total_s", "participants": [...]}``, each participant
    ``{"band_id", "name", "kind", "cue_mode", "phase", "heart_rate", "heart_rate_age_s",
    "heart_rate_live", "heart_rate_percent", "max_hr", "zone", "battery", "battery_low",
    "link_up", "link_alert", "seen_s_ago", "come_closer", "last_cue_error_ms", "cues_fired",
    "cues_missed"}``. ``zone`` is the :class:`~companion.group_state.HeartZone` number (0
    for none, 1-5); a missing reading is ``null``. A band that takes turns on the links
    shows its last turn's reading: ``heart_rate_live`` is then false and
    ``heart_rate_age_s`` says how old it is.
    """
    return {
        "class_id": snapshot.class_id,
        "plan": snapshot.plan,
        "phase": snapshot.phase.value,
        "round": snapshot.round,
        "rounds": snapshot.rounds,
        "exercise": snapshot.exercise,
        "next_exercise": snapshot.next_exercise,
        "step_remaining_s": snapshot.step_remaining_s,
        "elapsed_s": snapshot.elapsed_s,
        "total_s": snapshot.total_s,
        "participants": [
            _participant(p, come_closer_after_s, low_battery_percent) for p in snapshot.participants
        ],
    }


def _participant(
    p: ParticipantSnapshot, come_closer_after_s: float, low_battery_percent: int
) -> dict[str, Any]:
    percent = None
    if p.heart_rate is not None and p.max_hr > 0:
        percent = p.heart_rate * 100 // p.max_hr  # as heart_zone cuts it: 60 % is zone 2
    return {
        "band_id": p.band_id,
        "name": p.name,
        "kind": p.kind.value,
        "cue_mode": p.cue_mode.value,
        "phase": p.phase.value,
        "heart_rate": p.heart_rate,
        "heart_rate_age_s": p.heart_rate_age_s,
        "heart_rate_live": p.heart_rate is not None
        and (p.heart_rate_age_s is None or p.heart_rate_age_s <= LIVE_HEART_RATE_S),
        "heart_rate_percent": percent,
        "max_hr": p.max_hr,
        "zone": p.zone.value,
        "battery": p.battery,
        "battery_low": p.battery is not None and p.battery <= low_battery_percent,
        "link_up": p.link_up,
        # Host-timed kinds and straps need the live link to cue at all.
        "link_alert": not p.link_up and p.cue_mode is not CueMode.BAND,
        "seen_s_ago": p.seen_s_ago,
        "come_closer": p.seen_s_ago is None or p.seen_s_ago >= come_closer_after_s,
        "last_cue_error_ms": p.last_cue_error_ms,
        "cues_fired": p.cues_fired,
        "cues_missed": p.cues_missed,
    }
