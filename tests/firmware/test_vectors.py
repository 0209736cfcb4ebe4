"""Every golden vector and every band scenario, answered by each firmware implementation.

The cases come from ``firmware_protocol/vectors/*.json`` and from the reference band
(``cases.py``); each implementation answers all of them in one run of its own runtime.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import Case, all_cases, check
from .runners import RUNNERS

CASES = all_cases()
_results: dict[str, dict[str, dict[str, Any]]] = {}


def _answers(implementation: str) -> dict[str, dict[str, Any]]:
    if implementation not in _results:
        _results[implementation] = RUNNERS[implementation](CASES)
    return _results[implementation]


@pytest.mark.parametrize("implementation", sorted(RUNNERS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(implementation: str, case: Case) -> None:
    answers = _answers(implementation)
    assert case.id in answers, f"{implementation} gave no answer to {case.id}"
    check(case, answers[case.id])


def test_every_vector_file_is_used() -> None:
    from .cases import VECTORS

    used = {"messages.json", "frames.json", "hrs.json", "plan.json"}
    assert {p.name for p in VECTORS.glob("*.json")} == used, "a new vector file needs its cases"
