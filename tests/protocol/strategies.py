"""Hypothesis strategies that build every message of the protocol."""

from __future__ import annotations

from hypothesis import strategies as st

import firmware_protocol as fp

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF)
s8 = st.integers(-128, 127)
s64 = st.integers(-(2**63), 2**63 - 1)
plan_ids = st.binary(min_size=8, max_size=8)
texts = st.text(max_size=40).filter(lambda s: len(s.encode("utf-8")) <= 255)


def open_enum(cls: type[fp.OpenIntEnum]) -> st.SearchStrategy[fp.OpenIntEnum]:
    """Known members and unknown codes alike: decoding must keep both."""
    return st.one_of(st.sampled_from(list(cls)), u8.map(cls))


commands = st.one_of(
    st.builds(fp.Hello, u8, u8),
    st.builds(fp.PlanChunk, plan_ids, u16, u16, st.binary(max_size=300)),
    st.builds(fp.Start, plan_ids, u64, u32),
    st.just(fp.Pause()),
    st.just(fp.Resume()),
    st.just(fp.Stop()),
    st.just(fp.Skip()),
    st.builds(fp.TimeSyncRequest, u64),
    st.builds(fp.Adjust, st.integers(-(2**31), 2**31 - 1)),
)
replies = st.one_of(
    st.just(fp.Ack()),
    st.builds(fp.Nack, open_enum(fp.NackCode), texts),
    st.builds(
        fp.Capabilities,
        u8,
        texts,
        u16,
        u16,
        u8,
        u8,
        u16,
        st.sampled_from(list(fp.MotorFlags)),
        plan_ids,
        u64,
        u32,
        u32,
        u32,
        open_enum(fp.SessionStateCode),
        u8,
        s8,
        u64,
        s64,
        s64,
        u64,
    ),
    st.builds(fp.TimeSyncResponse, u64, u64, u64),
)
events = st.one_of(
    st.builds(fp.CueFired, u32, u64, u16, open_enum(fp.CueKind), u8, s8, u64, u64, u32),
    st.builds(
        fp.SessionState,
        u32,
        u64,
        open_enum(fp.SessionStateCode),
        u8,
        s8,
        s64,
        open_enum(fp.StopCause),
        u32,
    ),
    st.builds(
        fp.HeartRateSample,
        u32,
        u64,
        u16,
        st.lists(u16, max_size=32).map(tuple),
        st.booleans(),
        u32,
    ),
    st.builds(fp.ButtonPressed, u32, u64, open_enum(fp.Button), u32),
)
messages = st.one_of(commands, replies, events, st.builds(fp.EventAck, u32))

pulses = st.builds(fp.Pulse, u16, u16)
patterns = st.builds(
    fp.Pattern, open_enum(fp.CueKind), u8, st.lists(pulses, min_size=1, max_size=6).map(tuple)
)
steps = st.builds(
    fp.WireStep, texts, open_enum(fp.StepKind), st.integers(1, 600_000), st.booleans()
)
wire_plans = st.builds(
    fp.WirePlan,
    texts,
    st.integers(1, 10),
    st.integers(0, 120_000),
    st.integers(0, 5),
    st.lists(steps, min_size=1, max_size=12).map(tuple),
    st.lists(patterns, max_size=8).map(tuple),
)

heart_rates = st.one_of(
    st.builds(
        fp.HeartRateMeasurement,
        u8,
        st.sampled_from(list(fp.ContactStatus)),
        st.one_of(st.none(), u16),
        st.lists(u16, max_size=8).map(tuple),
        st.just(False),
    ),
    st.builds(
        fp.HeartRateMeasurement,
        u16,
        st.sampled_from(list(fp.ContactStatus)),
        st.one_of(st.none(), u16),
        st.lists(u16, max_size=8).map(tuple),
        st.just(True),
    ),
)
