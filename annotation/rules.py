"""Clinical rules that more than one package applies, each defined once and named. Pure: no
Django, so the export's fast SQL path, the general path, the labeling service and the pages all
call the same function (and a property test holds them to it).

- response_vetoed: when one response of a pair is kept out of training as "chosen".
"""

from __future__ import annotations

from collections.abc import Iterable


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
