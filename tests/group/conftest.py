"""A class of virtual bands on one virtual link, each with its own clock offset and drift."""

from __future__ import annotations

import firmware_protocol as fp
from companion.sim import VirtualBand, VirtualWorld, class_band_configs


async def add_bands(world: VirtualWorld, count: int, *, seed: int = 7) -> list[VirtualBand]:
    """``count`` bands with independent clock offsets (up to a minute) and drift (±50 ppm)."""
    return [await world.add_band(config) for config in class_band_configs(count, seed=seed)]


def true_host_s(band: VirtualBand, band_us: int) -> float:
    """A band-clock time as exact host seconds (the virtual band's own clock mapping)."""
    config = band.config
    return (band_us - config.clock_offset_us) / (1.0 + config.drift_ppm / 1_000_000) / 1_000_000


def motor_times(band: VirtualBand) -> dict[int, list[float]]:
    """Each timeline cue's motor starts on ``band``, in exact host seconds."""
    played: dict[int, list[float]] = {}
    for action in band.motor.played:
        if action.cue_id >= 0 and action.cue_id != fp.STOPPED_CUE_ID:
            played.setdefault(action.cue_id, []).append(true_host_s(band, action.at_us))
    return played


def spreads_ms(bands: list[VirtualBand], cue_ids: list[int]) -> list[float]:
    """For each cue, max - min of its motor start across ``bands`` (real milliseconds)."""
    played = [motor_times(band) for band in bands]
    out = []
    for cue_id in cue_ids:
        times = [p[cue_id][0] for p in played if cue_id in p]
        out.append((max(times) - min(times)) * 1000 if times else 0.0)
    return out
