"""annotation.rules: each clinical rule once. The vocabulary's spellings are all derived from it,
and no other module of the product spells the five choices."""

import re
from pathlib import Path

import pytest

from annotation import rules
from annotation.labeling.assignment import CANONICAL_LABELS, DISPLAY_PREFERENCES, preference_to_canonical
from annotation.models import Preference

ROOT = Path(__file__).resolve().parents[2]


def test_the_vocabulary_is_one_scale_in_three_spellings():
    assert [p.value for p in rules.PREFERENCES] == [-2, -1, 0, 1, 2] == [v for v, _ in Preference.choices]
    assert DISPLAY_PREFERENCES == {"1>>2": -2, "1>2": -1, "=": 0, "2>1": 1, "2>>1": 2}
    assert CANONICAL_LABELS == {-2: "A>>B", -1: "A>B", 0: "=", 1: "B>A", 2: "B>>A"}
    assert [p.key for p in rules.PREFERENCES] == ["1", "2", "3", "4", "5"]
    # Shown B first, "Response 1 much better" is "B much better".
    assert preference_to_canonical("1>>2", a_shown_first=False) == 2


def test_no_module_spells_the_choices_itself():
    spelled = re.compile(r"""["'](1>>2|2>>1|A>>B|B>>A)["']""")
    offenders = []
    for path in [*ROOT.glob("annotation/**/*.py"), *ROOT.glob("frontend/**/*.py"), *ROOT.glob("frontend/static/**/*.js"),
                 *ROOT.glob("training/**/*.py")]:
        if "migrations" in path.parts or path.name == "rules.py" or path.parts[-2:] == ("demo", "load.py"):
            continue
        if spelled.search(path.read_text()):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.parametrize("marks,expected", [
    ({"marked_unsafe": True, "both_unacceptable": False}, True),
    ({"marked_unsafe": False, "both_unacceptable": True}, True),
    ({"marked_unsafe": False, "both_unacceptable": False, "flags": ["unsafe_advice"], "veto_flags": ["unsafe_advice"]}, True),
    ({"marked_unsafe": False, "both_unacceptable": False, "flags": ["unsafe_advice"], "veto_flags": []}, False),
    ({"marked_unsafe": False, "both_unacceptable": False, "flags": ["hallucination"], "veto_flags": ["unsafe_advice"]}, False),
])
def test_response_vetoed(marks, expected):
    assert rules.response_vetoed(**marks) is expected
