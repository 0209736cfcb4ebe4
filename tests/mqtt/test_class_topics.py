"""Names in a class's topic tree: what a host name becomes, and what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.mqtt.class_topics import ClassTopics, as_name, check_name


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
