"""The one place that drives the FIT writer (``fit-tool``, BSD-3-Clause).

fit-tool's message classes take its own attribute names (``workout_step_index``
for the wire's ``wkt_step_index``) and silently ignore any other attribute, so a
misspelt field would write nothing. :func:`fill` refuses a name that is not one
of the class's fields and checks that each value was stored. It also takes
timestamps as milliseconds since the Unix epoch, not FIT's seconds since
1989-12-31: :func:`fit_ms` makes them from an aware datetime.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, TypeVar

try:
    from fit_tool.fit_file_builder import FitFileBuilder
    from fit_tool.profile.messages.activity_message import ActivityMessage
    from fit_tool.profile.messages.device_info_message import DeviceInfoMessage
    from fit_tool.profile.messages.event_message import EventMessage
    from fit_tool.profile.messages.file_id_message import FileIdMessage
    from fit_tool.profile.messages.hrv_message import HrvMessage
    from fit_tool.profile.messages.lap_message import LapMessage
    from fit_tool.profile.messages.record_message import RecordMessage
    from fit_tool.profile.messages.session_message import SessionMessage
    from fit_tool.profile.messages.workout_message import WorkoutMessage
    from fit_tool.profile.messages.workout_step_message import WorkoutStepMessage
    from fit_tool.profile.profile_type import (
        Activity,
        BleDeviceType,
        Event,
        EventType,
        FileType,
        Intensity,
        LapTrigger,
        Manufacturer,
        SessionTrigger,
        SourceType,
        Sport,
        SubSport,
        TimerTrigger,
        WorkoutStepDuration,
        WorkoutStepTarget,
    )
except ImportError as exc:  # the optional extra is not installed
    raise ImportError(
        "writing FIT files needs the optional 'fit' extra: pip install 'companion[fit]'"
    ) from exc

__all__ = [
    "Activity",
    "ActivityMessage",
    "BleDeviceType",
    "DeviceInfoMessage",
    "Event",
    "EventMessage",
    "EventType",
    "FileIdMessage",
    "FileType",
    "HrvMessage",
    "Intensity",
    "LapMessage",
    "LapTrigger",
    "Manufacturer",
    "RecordMessage",
    "SessionMessage",
    "SessionTrigger",
    "SourceType",
    "Sport",
    "SubSport",
    "TimerTrigger",
    "WorkoutMessage",
    "WorkoutStepDuration",
    "WorkoutStepMessage",
    "WorkoutStepTarget",
    "build_fit",
    "fill",
    "fit_ms",
]

_M = TypeVar("_M")
# Strings are padded to this size so that most messages of a kind share one definition.
_MIN_STRING_SIZE: Final = 16


def fill(message: _M, **fields: Any) -> _M:
    """Set ``fields`` on a fit-tool ``message`` in order, refusing names it would ignore."""
    kind = type(message)
    for name, value in fields.items():
        if not isinstance(getattr(kind, name, None), property):
            raise AttributeError(f"{kind.__name__} has no FIT field {name!r}")
        setattr(message, name, value)
        # A sub-field (duration_time...) is stored only once its selector field is set.
        if value is not None and getattr(message, name) is None:
            raise AttributeError(f"{kind.__name__}.{name} = {value!r} was not stored")
    return message


def fit_ms(moment: datetime) -> int:
    """A FIT timestamp as fit-tool takes it: ms since the Unix epoch, on a whole second."""
    return round(moment.timestamp()) * 1000


def build_fit(messages: Iterable[Any]) -> bytes:
    """The bytes of a FIT file holding ``messages`` in order (header and CRC included)."""
    builder = FitFileBuilder(auto_define=True, min_string_size=_MIN_STRING_SIZE)
    builder.add_all(list(messages))
    data: bytes = builder.build_bytes()
    return data
