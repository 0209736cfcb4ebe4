"""FIT files: export a session as an activity, import a workout as a plan.

FIT is what training platforms read and what structured workouts come in.
Files are written with ``fit-tool`` (BSD-3-Clause) and read with
``fitdecode`` (MIT, CRC-checked), both in the optional ``fit`` extra
(``pip install 'companion[fit]'``); importing this package without it raises
an :class:`ImportError` that names the extra. Garmin's own SDK is not used:
its licence is not open source.

The mapping between plans and FIT workouts (which steps map, which are
refused and why) is in ``docs/plans.md``.
"""

from __future__ import annotations

from .activity import FitLap, activity_fit, activity_laps, export_fit
from .workout import load_fit_plan, parse_fit_workout, workout_fit

__all__ = [
    "FitLap",
    "activity_fit",
    "activity_laps",
    "export_fit",
    "load_fit_plan",
    "parse_fit_workout",
    "workout_fit",
]
