"""Clinical rules that more than one package applies, each defined once and named. Pure: no
Django, so the export's fast SQL path, the general path, the labeling service and the pages all
call the same function (and a property test holds them to it).

- PREFERENCES: the five choices a physician makes, with their keys, words and values.
- response_vetoed: when one response of a pair is kept out of training as "chosen".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PreferenceChoice:
    """One of the five choices. `value` is the canonical scale stored for every judgment (-2..2,
    negative favours response A of the pair); on screen the physician compares Response 1 and 2,
    whichever of A and B was shown first, so `display` and `words` speak of those."""

    value: int       # canonical -2..2
    symbol: str      # canonical, in A/B terms: what the API, adjudication and gold labels use
    display: str     # in screen terms (1 = the response shown first): what the page sends
    key: str         # the keyboard shortcut on the labeling page
    words: str       # what the physician reads
    canonical_words: str  # the same in A/B terms (reports, adjudication, exports)
    strong_or_tie: bool   # a "much better" or a tie: batches may ask for a rationale on these


PREFERENCES: tuple[PreferenceChoice, ...] = (
    PreferenceChoice(-2, "A>>B", "1>>2", "1", "Response 1 much better", "A much better", True),
    PreferenceChoice(-1, "A>B", "1>2", "2", "Response 1 better", "A better", False),
    PreferenceChoice(0, "=", "=", "3", "About the same", "About the same", True),
    PreferenceChoice(1, "B>A", "2>1", "4", "Response 2 better", "B better", False),
    PreferenceChoice(2, "B>>A", "2>>1", "5", "Response 2 much better", "B much better", True),
)
PREFERENCE_BY_VALUE = {p.value: p for p in PREFERENCES}
PREFERENCE_BY_SYMBOL = {p.symbol: p for p in PREFERENCES}
PREFERENCE_BY_DISPLAY = {p.display: p for p in PREFERENCES}


def preferences_for_page() -> list[dict]:
    """The vocabulary as the labeling page's script reads it (json_script), so the page never spells it."""
    return [asdict(p) for p in PREFERENCES]


def response_vetoed(*, marked_unsafe: bool, both_unacceptable: bool, flags: Iterable[str] = (),
                    veto_flags: Iterable[str] = ()) -> bool:
    """A response is vetoed by one rater's marks when the rater marked it unsafe, marked both
    responses unacceptable, or gave it one of `veto_flags` (the export's setting; default
    "unsafe_advice"). A vetoed response is never exported as `chosen`, and a physician who vetoes
    must say how severe the harm is. Across raters the veto is an OR: one rater's veto is enough."""
    if marked_unsafe or both_unacceptable:
        return True
    veto_flags = tuple(veto_flags)
    return bool(veto_flags) and any(f in veto_flags for f in flags)
