"""A class's topic tree: what a host name becomes, what is refused, and what a host says."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.mqtt.class_topics import (
    ClassMessageError,
    ClassStart,
    ClassTopics,
    as_name,
    check_name,
    encode,
    parse_start,
    participants_from_payload,
    participants_payload,
)
from tests.screen.fakes import participant


@pytest.mark.parametrize(
    ("text", "name"),
    [("pi-b", "pi-b"), ("_x y", "x-y"), ("", "host"), ("---", "host"), ("é-gym", "gym")],
)
def test_a_machine_name_becomes_one_topic_level(text: str, name: str) -> None:
    assert as_name(text, "host") == name


@given(st.text(max_size=200))
def test_whatever_the_text_its_name_is_one_the_class_accepts(text: str) -> None:
    name = as_name(text, "host")
    assert check_name("a host's name", name) == name
    assert ClassTopics("c").host_of(ClassTopics("c").host(name)) == name


@pytest.mark.parametrize("name", ["", "a/b", "+", "#", "-lead", "x" * 65])
def test_a_name_that_is_not_one_topic_level_is_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be a topic level"):
        check_name("the class id", name)


def test_a_hosts_participants_come_back_as_they_were_sent() -> None:
    sent = (
        participant(0, 120, heart_rate_age_s=12.5),
        participant(1, None, seen_s_ago=None, battery=None),
        participant(2, 150, last_cue_error_ms=-0.7),
    )
    got, sent_utc = participants_from_payload(participants_payload(sent, 1_800_000_000.5))
    assert sent_utc == 1_800_000_000.5
    assert got == sent


@pytest.mark.parametrize(
    ("field", "value"),
    [("heart_rate_age_s", "old"), ("heart_rate", 1.5), ("phase", "dancing"), ("cues_fired", -1)],
)
def test_a_participant_with_a_bad_field_is_refused_by_name(field: str, value: object) -> None:
    row = json.loads(participants_payload((participant(0, 120),), 0.0))
    row["participants"][0][field] = value
    with pytest.raises(ClassMessageError, match=field):
        participants_from_payload(json.dumps(row).encode())


@pytest.mark.parametrize(
    "start",
    [
        ClassStart(1_800_000_000.5),
        ClassStart(None, "host pi-b cannot take part"),
        ClassStart(1_800_000_000.5, seq=3, at_utc=1_800_000_040.25, elapsed_s=28.5, paused=True),
    ],
)
def test_a_start_and_where_its_timeline_stands_come_back_as_they_were_sent(
    start: ClassStart,
) -> None:
    assert parse_start(encode(start)) == start


def test_a_start_from_before_the_timeline_fields_reads_as_one_with_no_control_yet() -> None:
    start = parse_start(b'{"v": 1, "start_utc": 1800000000.5, "refused": ""}')
    assert start == ClassStart(1_800_000_000.5, seq=0, at_utc=None, elapsed_s=0.0, paused=False)


@pytest.mark.parametrize(
    ("field", "value"), [("seq", -1), ("at_utc", "soon"), ("elapsed_s", None), ("paused", 1)]
)
def test_a_start_with_a_bad_timeline_field_is_refused_by_name(field: str, value: object) -> None:
    data = {"v": 1, "start_utc": 1800000000.5, "refused": "", field: value}
    with pytest.raises(ClassMessageError, match=field):
        parse_start(json.dumps(data).encode())
