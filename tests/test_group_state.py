"""Heart-rate zones as class screens colour them."""

from __future__ import annotations

import pytest

from companion.group_state import HeartZone, heart_zone


@pytest.mark.parametrize(
    ("bpm", "zone"),
    [
        (None, HeartZone.NONE),
        (94, HeartZone.NONE),  # 49 % of 190
        (95, HeartZone.VERY_LIGHT),  # exactly 50 %
        (114, HeartZone.LIGHT),  # exactly 60 %: not 59.99... by a float
        (133, HeartZone.MODERATE),  # exactly 70 %
        (152, HeartZone.HARD),  # exactly 80 %
        (171, HeartZone.MAXIMUM),  # exactly 90 %
        (230, HeartZone.MAXIMUM),  # above the stated max
    ],
)
def test_zones_are_whole_tenths_of_the_maximum(bpm: int | None, zone: HeartZone) -> None:
    assert heart_zone(bpm, 190) is zone


def test_no_maximum_means_no_zone() -> None:
    assert heart_zone(150, 0) is HeartZone.NONE
