"""snapshot_to_json: the one mapping from a class snapshot to what the page reads."""

from __future__ import annotations

import dataclasses
import json

from companion.screen import snapshot_to_json
from tests.screen.fakes import ZONES, participant, twelve


def test_a_snapshot_becomes_plain_json_with_enums_as_their_values() -> None:
    data = snapshot_to_json(twelve())
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert {k: v for k, v in data.items() if k != "participants"} == {
        "class_id": "tuesday-6pm",
        "plan": "back-5",
        "phase": "running",
        "round": 2,
        "rounds": 5,
        "exercise": "Squats",
        "next_exercise": "Burpees",
        "step_remaining_s": 42.0,
        "elapsed_s": 300.0,
        "total_s": 1500.0,
    }
    assert data["participants"][0] == {
        "band_id": "band-00",
        "name": "Ana",
        "kind": "companion",
        "cue_mode": "band",
        "phase": "running",
        "heart_rate": 80,
        "heart_rate_age_s": None,
        "heart_rate_live": True,
        "heart_rate_percent": 42,
        "max_hr": 190,
        "zone": 0,
        "battery": 80,
        "battery_low": False,
        "link_up": True,
        "link_alert": False,
        "seen_s_ago": 0.4,
        "come_closer": False,
        "last_cue_error_ms": 1.5,
        "cues_fired": 12,
        "cues_missed": 0,
    }


def test_every_zone_and_its_whole_percent_of_max() -> None:
    tiles = snapshot_to_json(twelve())["participants"]
    assert tuple(t["zone"] for t in tiles) == ZONES
    # 114 bpm of 190 is exactly 60 %: zone 2, shown as 60 %, never 59.
    assert snapshot_to_json(twelve(offset=-6))["participants"][2]["heart_rate_percent"] == 60
    assert snapshot_to_json(twelve(offset=-6))["participants"][2]["zone"] == 2
    assert tiles[3]["heart_rate"] is None  # not heard from for 30 s: no stale reading
    assert tiles[3]["heart_rate_percent"] is None


def test_a_reading_from_a_rotated_bands_last_turn_is_not_live() -> None:
    tiles = [
        participant(0, 120, heart_rate_age_s=1.0),
        participant(1, 120, heart_rate_age_s=5.0),
        participant(2, 120, heart_rate_age_s=12.4),
        participant(3, None),
    ]
    snapshot = dataclasses.replace(twelve(), participants=tuple(tiles))
    shown = snapshot_to_json(snapshot)["participants"]
    assert [t["heart_rate_live"] for t in shown] == [True, True, False, False]
    assert [t["heart_rate_age_s"] for t in shown] == [1.0, 5.0, 12.4, None]
    assert shown[2]["heart_rate"] == 120  # shown, as the reading it is


def test_low_battery_come_closer_and_link_alert_are_decided_here() -> None:
    tiles = snapshot_to_json(twelve())["participants"]
    assert [t["battery_low"] for t in tiles].index(True) == 2
    assert [t["come_closer"] for t in tiles] == [i == 3 for i in range(12)]
    # A heart-rate strap needs its link; a band-timed band off its link buzzes anyway.
    assert [t["link_alert"] for t in tiles] == [i == 4 for i in range(12)]
    alone = dataclasses.replace(twelve(), participants=(participant(0, 120, link_up=False),))
    off_link_band = snapshot_to_json(alone)["participants"][0]
    assert off_link_band["link_up"] is False
    assert off_link_band["link_alert"] is False


def test_a_band_never_heard_from_is_to_come_closer_and_thresholds_are_parameters() -> None:
    never = participant(0, None, seen_s_ago=None, battery=None)
    snapshot = dataclasses.replace(twelve(), participants=(never,))
    tile = snapshot_to_json(snapshot)["participants"][0]
    assert tile["come_closer"] is True
    assert tile["battery_low"] is False  # no battery reading is not a low one
    seen_5_s_ago = participant(0, 120, seen_s_ago=5.0, battery=30)
    snapshot = dataclasses.replace(twelve(), participants=(seen_5_s_ago,))
    tile = snapshot_to_json(snapshot, come_closer_after_s=5.0, low_battery_percent=30)
    assert tile["participants"][0]["come_closer"] is True
    assert tile["participants"][0]["battery_low"] is True
