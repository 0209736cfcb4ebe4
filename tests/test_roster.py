"""A class's roster file: who wears which band, and every mistake named with its fix."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from companion.errors import PlanError
from companion.group import Participant
from companion.plan import load_plan
from companion.roster import RosterError, load_roster, parse_roster

ROSTER = """
[[participant]]
band = "C3:52:11:8A:0F:21"
name = "Ana"
age = 34

[[participant]]
band = "sim://127.0.0.1:8000/Companion2"
name = "Ben"
max_hr = 182

[[participant]]
band = "InfiniTime"
name = "  Chloé "
"""


def test_a_roster_gives_each_band_its_person_and_their_zones(tmp_path: Path) -> None:
    path = tmp_path / "tuesday.toml"
    path.write_text(ROSTER, encoding="utf-8")
    people = load_roster(path)
    assert people == [
        Participant("C3:52:11:8A:0F:21", "Ana", age=34),
        Participant("sim://127.0.0.1:8000/Companion2", "Ben", max_hr=182),
        Participant("InfiniTime", "Chloé"),
    ]
    assert [p.resolved_max_hr for p in people] == [186, 182, 190]


def test_for_virtual_bands_the_names_need_no_band() -> None:
    data = tomllib.loads('[[participant]]\nname = "Ana"\n[[participant]]\nname = "Ben"\n')
    people = parse_roster(data, "r.toml", bands_given=False)
    assert [(p.target, p.name) for p in people] == [("", "Ana"), ("", "Ben")]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "no participants; add one [[participant]] table"),
        ('[[people]]\nname = "Ana"', "unknown key 'people'"),
        ('[[participant]]\nband = "A"\nname = "Ana"\nweight = 70', "participant 1: unknown key"),
        ('[[participant]]\nname = "Ana"', "participant 1: band must be its address or name"),
        ('[[participant]]\nband = "A"', "participant 1: name must be 1 to 40 characters"),
        ('[[participant]]\nband = "A"\nname = "Ana"\nage = 300', "age must be a whole number"),
        ('[[participant]]\nband = "A"\nname = "Ana"\nmax_hr = "high"', "max_hr must be a whole"),
        ('[[participant]]\nband = "A"\nname = "Ana"\nage = true', "age must be a whole number"),
        (
            '[[participant]]\nband = "A"\nname = "Ana"\n[[participant]]\nband = "A"\nname = "Ben"',
            "band 'A' is on the roster twice",
        ),
        ("participant = 3", "no participants"),
        ("participant = [3]", "participant 1: not a table"),
    ],
)
def test_a_wrong_roster_is_refused_with_the_entry_and_the_fix(text: str, said: str) -> None:
    with pytest.raises(RosterError, match=r"^r\.toml: ") as raised:
        parse_roster(tomllib.loads(text), "r.toml")
    assert said in str(raised.value)


def test_an_unreadable_or_broken_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="cannot read the roster"):
        load_roster(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[participant]\n", encoding="utf-8")
    with pytest.raises(RosterError, match="not valid TOML"):
        load_roster(broken)


def test_a_roster_of_more_than_a_class_takes_is_refused() -> None:
    data = {"participant": [{"band": f"b{i}", "name": f"P{i}"} for i in range(201)]}
    with pytest.raises(RosterError, match="at most 200"):
        parse_roster(data, "r.toml")


def test_a_roster_or_plan_that_is_not_utf8_text_is_a_clear_error(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.toml"
    latin.write_bytes('[[participant]]\nname = "Chloé"\n'.encode("latin-1"))
    with pytest.raises(RosterError, match="the roster is not UTF-8 text"):
        load_roster(latin)
    with pytest.raises(PlanError, match="the plan file is not UTF-8 text"):
        load_plan(latin)
