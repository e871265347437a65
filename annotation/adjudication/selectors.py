"""Reads for settling disagreements: which batches a user may adjudicate, the disputed pairs of a
batch (most disputed first), and everything the raters said about one pair side by side."""

from __future__ import annotations

from annotation import agreement as engine
from annotation.errors import DomainError, NotFound
from annotation.rules import PREFERENCES
from annotation.models import Adjudication, Batch, BatchState, Judgment, Pair, Preference, Role

PREFERENCE_SYMBOLS = {p.value: p.symbol for p in PREFERENCES}
DISPUTE_STATUSES = ("all", "open", "adjudicated")


def user_can_adjudicate(user) -> bool:
    profile = getattr(user, "profile", None)
    if not user or not user.is_authenticated or profile is None or not profile.is_active:
        return False
    return profile.role == Role.ADMIN or profile.can_adjudicate


def _preference_view(value: int | None) -> dict | None:
    if value is None:
        return None
    return {"value": value, "symbol": PREFERENCE_SYMBOLS[value], "label": Preference(value).label}


def batch_disputes_list(*, batch: Batch, status: str = "all", limit: int = 50, offset: int = 0) -> dict:
    """Pairs whose raters disagree on the direction, most disputed first (raters on opposite
    sides, then the share outside the largest camp, then the spread on the five-point scale)."""
    if status not in DISPUTE_STATUSES:
        raise DomainError(f"Unknown status {status!r}: use one of {', '.join(DISPUTE_STATUSES)}.")
    found = batch_disputed_items(batch=batch)
    latest = _latest_adjudications(batch=batch)
    order = [int(p) for p in found["item"]]
    keep = [i for i, pid in enumerate(order) if status == "all" or ((pid in latest) == (status == "adjudicated"))]
    page = keep[offset: offset + limit]
    pairs = {p.pk: p for p in Pair.objects.filter(pk__in=[order[i] for i in page]).select_related("prompt")}
    results = []
    for i in page:
        pid = order[i]
        pair = pairs[pid]
        decision = latest.get(pid)
        results.append({
            "pair": pid,
            "external_id": pair.external_id,
            "prompt_excerpt": pair.prompt.text[:200],
            "n": int(found["n"][i]),
            "counts": dict(zip(map(str, engine.LEVEL_SCALES["five"]), map(int, found["counts"][i]))),
            "opposite_sides": bool(found["opposite"][i]),
            "disagreement": float(found["disagreement"][i]),
            "spread": int(found["spread"][i]),
            "is_calibration": pair.gold_preference is not None,
            "adjudication": None if decision is None else _preference_view(decision),
        })
    return {"count": len(keep), "limit": limit, "offset": offset, "status": status, "results": results}


def batch_disputed_items(*, batch: Batch) -> dict:
    """The batch's disputed pairs in order with their figures (engine.disputed_items), computed
    once per change of its judgments (the agreement fingerprint, read from counters) and kept in
    the cache: a page of disputes must not load every judgment of a large batch."""
    from django.core.cache import cache

    from annotation.agreement.services import batch_agreement_fingerprint

    # created_at too: a database that reuses ids (SQLite after a rollback) must not meet an old entry.
    key = f"disputes:{batch.pk}:{batch.created_at.timestamp()}:{batch_agreement_fingerprint(batch=batch)}"
    found = cache.get(key)
    if found is None:
        rows = list(Judgment.objects.filter(batch=batch, is_current=True).values_list("pair_id", "preference"))
        found = engine.disputed_items([r[0] for r in rows], [r[1] for r in rows]) if rows else {"item": []}
        cache.set(key, found, timeout=24 * 3600)
    return found


def _latest_adjudications(*, batch: Batch) -> dict[int, int]:
    """pair id -> preference of the newest adjudication (newest by time, then id)."""
    latest: dict[int, int] = {}
    for pair_id, pref in (
        # Adjudicated pairs first (few), then their batch: joining on the batch's pairs scanned them all.
        Adjudication.objects.filter(pair_id__in=list(Pair.objects.filter(
            pk__in=set(Adjudication.objects.values_list("pair_id", flat=True)), batch=batch).values_list("pk", flat=True)))
        .order_by("pair_id", "-created_at", "-id").values_list("pair_id", "preference")
    ):
        latest.setdefault(pair_id, pref)
    return latest


# Disputes are settled while a batch is in work and after it closed; closing publishes the first
# export at once (the batch becomes exported), so exported batches stay open to adjudication and the
# next export picks the decision up.
ADJUDICATION_STATES = (BatchState.OPEN, BatchState.CLOSED, BatchState.EXPORTED)


def adjudication_batches(*, user):
    """The batches whose disputes `user` may settle: every one for an admin, their own specialty's
    for a senior physician with the adjudication right, none for anyone else."""
    if not user_can_adjudicate(user):
        return Batch.objects.none()
    if user.profile.role == Role.ADMIN:
        return Batch.objects.filter(state__in=ADJUDICATION_STATES)
    return Batch.objects.filter(state__in=ADJUDICATION_STATES, specialty_id=user.profile.specialty_id)


def pair_for_adjudicator(*, pair_id: int, user) -> Pair:
    """The pair, or NotFound when it does not exist or lies outside the user's batches (404, not
    403, so pair ids of other specialties cannot be probed)."""
    pair = pair_get(pair_id=pair_id)
    if not adjudication_batches(user=user).filter(pk=pair.batch_id).exists():
        raise NotFound(f"Pair {pair_id} does not exist among the batches you adjudicate.")
    return pair


def pair_get(*, pair_id: int) -> Pair:
    try:
        return Pair.objects.select_related("batch", "prompt", "completion_a", "completion_b").get(pk=pair_id)
    except Pair.DoesNotExist:
        raise NotFound(f"Pair {pair_id} does not exist.")


def adjudication_detail(*, pair: Pair) -> dict:
    """Everything the raters said about a pair, side by side, in canonical A/B terms (what each
    rater saw on the left is given too), with the adjudication history, newest first."""
    judgments = (
        Judgment.objects.filter(pair=pair, is_current=True).select_related("rater").order_by("rater__username")
    )
    raters = []
    for j in judgments:
        raters.append({
            "rater": j.rater.username,
            "judgment": j.pk,
            "revision": j.revision,
            "preference": _preference_view(j.preference),
            "criteria": {key: _preference_view(v) if isinstance(v, int) and -2 <= v <= 2 else v for key, v in (j.criteria or {}).items()},
            "flags": {"a": list((j.flags or {}).get("a", [])), "b": list((j.flags or {}).get("b", []))},
            "a_unsafe": j.a_unsafe,
            "b_unsafe": j.b_unsafe,
            "both_unacceptable": j.both_unacceptable,
            "harm_severity": j.harm_severity,
            "error_spans": j.error_spans,
            "rationale": j.rationale,
            "shown_left": "A" if j.a_shown_first else "B",
            "time_spent_ms": j.time_spent_ms,
            "submitted_at": j.created_at,
        })
    prefs = [r["preference"]["value"] for r in raters]
    history = [
        {
            "id": adj.pk,
            "decided_by": adj.decided_by.username,
            "preference": _preference_view(adj.preference),
            "a_unsafe": adj.a_unsafe,
            "b_unsafe": adj.b_unsafe,
            "note": adj.note,
            "created_at": adj.created_at,
        }
        for adj in pair.adjudications.select_related("decided_by").order_by("-created_at", "-id")
    ]
    return {
        "pair": pair.pk,
        "batch": {"id": pair.batch_id, "name": pair.batch.name, "state": pair.batch.state},
        "external_id": pair.external_id,
        "prompt": pair.prompt.text,
        "a": {"text": pair.completion_a.text, "model": pair.completion_a.model_name},
        "b": {"text": pair.completion_b.text, "model": pair.completion_b.model_name},
        "gold": _preference_view(pair.gold_preference),
        "rubric": pair.batch.rubric,
        "judgments": raters,
        "summary": {
            "n": len(prefs),
            "counts": {str(v): prefs.count(v) for v in engine.LEVEL_SCALES["five"]},
            "a_unsafe": sum(r["a_unsafe"] for r in raters),
            "b_unsafe": sum(r["b_unsafe"] for r in raters),
            "disputed": len({(p > 0) - (p < 0) for p in prefs}) > 1,
        },
        "adjudication": history[0] if history else None,
        "history": history,
        "preference_choices": [_preference_view(v) for v in engine.LEVEL_SCALES["five"]],
    }


