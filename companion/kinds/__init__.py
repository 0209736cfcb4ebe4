"""Band kinds: the bands people own behind one interface.

``async with await connect_band(target) as band`` finds out what the device is
(companion band, InfiniTime, Bangle.js with stock apps, a heart-rate strap)
and returns a :class:`KindBand` of that kind; ``band.capabilities`` says what
it can do, starting with who times the cues. A host-timed kind is driven
through :class:`HostTimedBand`, which fires its cues on this host's clock.
"""

from __future__ import annotations

from ..events import CueTiming
from .bangle import BangleBand, LineSplitter
from .base import (
    BandKind,
    Capabilities,
    CueText,
    HostCue,
    KindBand,
    LinkOptions,
    TimeSync,
    cue_text_for,
)
from .companion import CompanionKindBand
from .detect import (
    CAPABILITIES,
    connect_band,
    connect_for_session,
    kind_from_advertisement,
    kind_of,
)
from .host_cues import CueVerdict, HostCueSchedule
from .infinitime import InfiniTimeBand
from .session_band import HostTimedBand
from .strap import StrapBand

__all__ = [
    "CAPABILITIES",
    "BandKind",
    "BangleBand",
    "Capabilities",
    "CompanionKindBand",
    "CueText",
    "CueTiming",
    "CueVerdict",
    "HostCue",
    "HostCueSchedule",
    "HostTimedBand",
    "InfiniTimeBand",
    "KindBand",
    "LineSplitter",
    "LinkOptions",
    "StrapBand",
    "TimeSync",
    "connect_band",
    "connect_for_session",
    "cue_text_for",
    "kind_from_advertisement",
    "kind_of",
]
