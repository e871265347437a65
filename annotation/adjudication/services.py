"""Writes for settling disagreements: the adjudicator's final decision on a pair.

Adjudications are separate rows (the raw judgments stay untouched); the newest one per pair is
the one exports use."""

from __future__ import annotations

from django.db import transaction

from annotation.audit import audit_record
from annotation.errors import DomainError, Forbidden
from annotation.labeling import hotsql
from annotation.models import Adjudication, Judgment, Pair

from .selectors import PREFERENCE_SYMBOLS, user_can_adjudicate

_SYMBOL_TO_PREFERENCE = {v: k for k, v in PREFERENCE_SYMBOLS.items()}


def preference_parse(value) -> int:
    """A canonical symbol of annotation.rules.PREFERENCES (A>>B ... B>>A), or an integer -2..2 (also as a string)."""
    if isinstance(value, bool):
        value = None  # True/False are ints in Python; never a preference
    if isinstance(value, str):
        text = value.strip().replace(" ", "").upper()
        if text in _SYMBOL_TO_PREFERENCE:
            return _SYMBOL_TO_PREFERENCE[text]
        try:
            value = int(text)
        except ValueError:
            value = None
    if isinstance(value, int) and -2 <= value <= 2:
        return value
    raise DomainError(
        f"preference must be one of {', '.join(repr(s) for s in PREFERENCE_SYMBOLS.values())} or an integer from -2 "
        f"({PREFERENCE_SYMBOLS[-2]}) to 2 ({PREFERENCE_SYMBOLS[2]})."
    )


def adjudication_record(
    *,
    pair: Pair,
    decided_by,
    preference: int | str,
    note: str,
    a_unsafe: bool = False,
    b_unsafe: bool = False,
) -> Adjudication:
    """Record the final decision on a pair. Raw judgments are not touched; a later adjudication
    supersedes this one (newest wins), and every one is audited."""
    if not user_can_adjudicate(decided_by):
        raise Forbidden("Adjudication needs the admin role or a senior physician's adjudication right.")
    rated_it = Judgment.objects.filter(pair_id=pair.pk, rater_id=decided_by.pk).exists()
    if rated_it and not pair.batch.allow_self_adjudication:
        raise Forbidden("You rated this pair yourself: another adjudicator must decide it "
                        "(an admin may allow self-adjudication for this batch).")
    value = preference_parse(preference)
    note = (note or "").strip()
    if not note:
        raise DomainError("A note is required: say why this is the final decision.")
    with transaction.atomic():
        adjudication = Adjudication.objects.create(
            pair=pair, decided_by=decided_by, preference=value, note=note, a_unsafe=bool(a_unsafe), b_unsafe=bool(b_unsafe),
        )
        audit_record(
            actor=decided_by, action="adjudication.recorded", obj=adjudication, batch=pair.batch_id,
            data={"pair": pair.pk, "preference": value, "a_unsafe": bool(a_unsafe), "b_unsafe": bool(b_unsafe), "note": note,
                  "self_rated": rated_it},
        )
        hotsql.batch_data_changed(batch_id=pair.batch_id)
    return adjudication
