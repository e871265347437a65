"""Reads for rounds: the previous batch's judged pairs (for anchors and disagreement), and every
round's figures, computed from physicians' current judgments with the pure rating module."""

from __future__ import annotations

from annotation.errors import NotFound
from annotation.models import Judgment, Pair

from ..models import Round, RoundPair, TrainingRun
from . import rating


def majority_of(directions: list[int]) -> int | None:
    return rating.majority(directions)


def _directions_by_pair(pair_ids) -> dict[int, dict[int, int]]:
    """{pair id: {rater id: direction}} from current judgments."""
    out: dict[int, dict[int, int]] = {}
    for pair_id, rater_id, pref in Judgment.objects.filter(pair_id__in=pair_ids, is_current=True).values_list("pair_id", "rater_id", "preference"):
        out.setdefault(pair_id, {})[rater_id] = rating.direction(pref)
    return out


def batch_pairs_with_directions(*, batch_id: int | None) -> list[dict]:
    """The batch's ordinary pairs with their texts and physicians' current directions."""
    if batch_id is None:
        return []
    pairs = list(Pair.objects.filter(batch_id=batch_id, gold_preference__isnull=True)
                 .select_related("prompt", "completion_a", "completion_b").order_by("id"))
    dirs = _directions_by_pair([p.pk for p in pairs])
    return [{"pair_id": p.pk, "prompt": p.prompt.text, "a": p.completion_a.text, "b": p.completion_b.text,
             "directions": list(dirs.get(p.pk, {}).values())} for p in pairs]


def round_list():
    return Round.objects.select_related("batch", "previous_batch", "source_run", "reward_run").order_by("-number", "-id")


def round_get(*, round_id: int) -> Round:
    rnd = round_list().filter(pk=round_id).first()
    if rnd is None:
        raise NotFound(f"Round {round_id} does not exist.")
    return rnd


# The selection rule that draws pairs uniformly (training.rounds.selection): the one whose pairs
# give an unbiased win rate.
UNBIASED_RULE = "random"


def _opponent(rnd: Round) -> str | None:
    roles = set(rnd.models_used)
    return "previous" if "previous" in roles else "reference" if "reference" in roles else None


def round_measures(*, rnd: Round, n_boot: int = 2000) -> dict:
    """A round's figures from its batch's current judgments:
    - head_to_head: the new policy's win rate against the previous one (ties half), 95% interval, on
      the pairs the random rule drew: the other rules pick close calls on purpose, which pulls a
      win rate toward 0.5, so only the uniform draw estimates it without bias;
    - head_to_head_all: the same over every new-vs-previous pair, whatever rule chose it (more
      pairs, biased: shown beside the unbiased figure, never instead of it);
    - rm_vs_physicians: how often the reward model's pre-labeling prediction matched the physicians'
      majority, next to the ceiling (one physician vs the majority of the others) - on fresh pairs
      only (anchors were seen before);
    - inter_rater: pairwise agreement of physicians on the round's pairs;
    - drift: physicians' agreement with their own earlier judgment of each anchor pair."""
    round_pairs = list(RoundPair.objects.filter(round=rnd))
    own = _directions_by_pair([rp.pair_id for rp in round_pairs])
    earlier = _directions_by_pair([rp.anchor_of_id for rp in round_pairs if rp.anchor_of_id])
    opponent = _opponent(rnd)
    h2h, h2h_all, predicted, judged, fresh_dirs, self_pairs = [], [], [], [], [], []
    rules: dict[str, int] = {}
    for rp in round_pairs:
        rules[rp.rule] = rules.get(rp.rule, 0) + 1
        dirs = own.get(rp.pair_id, {})
        if rp.anchor_of_id:
            before = earlier.get(rp.anchor_of_id, {})
            self_pairs += [(before[r], d) for r, d in dirs.items() if r in before]
            continue
        fresh_dirs.append(list(dirs.values()))
        if rp.rm_prob_b is not None and rp.rm_prob_b != 0.5:
            predicted.append(1 if rp.rm_prob_b > 0.5 else -1)
            judged.append(list(dirs.values()))
        if opponent and {rp.role_a, rp.role_b} == {"new", opponent} and dirs:
            new_is_a = rp.role_a == "new"
            scores = [0.5 if d == 0 else float((d < 0) == new_is_a) for d in dirs.values()]
            h2h_all.append(scores)
            if rp.rule == UNBIASED_RULE:
                h2h.append(scores)
    wr = rating.win_rate(h2h, n_boot=n_boot)
    wr_all = rating.win_rate(h2h_all, n_boot=n_boot)
    rm = rating.model_vs_majority(predicted, judged)
    ceiling = rating.physician_vs_others(fresh_dirs)
    inter = rating.pairwise_agreement(fresh_dirs)
    drift = rating.self_agreement(self_pairs)
    return {
        "pairs": len(round_pairs), "rules": rules, "opponent": opponent,
        "head_to_head": {**wr.__dict__, "rule": UNBIASED_RULE},
        "head_to_head_all": wr_all.__dict__,
        "rm_vs_physicians": {"rate": rm.rate, "n": rm.n, "ceiling": ceiling.rate, "ceiling_n": ceiling.n},
        "inter_rater": {"rate": inter.rate, "n": inter.n},
        "drift": {"rate": drift.rate, "n": drift.n},
    }


def model_ratings(*, n_boot: int = 1000) -> list[dict]:
    """Bradley-Terry ratings of every model compared in any round, from each physician judgment of a
    fresh round pair; intervals resample pairs."""
    comparisons = []
    round_pairs = RoundPair.objects.filter(anchor_of__isnull=True).exclude(model_a="").exclude(model_b="")
    by_pair = {rp.pair_id: rp for rp in round_pairs}
    for pair_id, dirs in _directions_by_pair(list(by_pair)).items():
        rp = by_pair[pair_id]
        for d in dirs.values():
            comparisons.append((rp.model_a, rp.model_b, 0.5 if d == 0 else float(d < 0), pair_id))
    return [r.__dict__ for r in rating.bt_ratings(comparisons, n_boot=n_boot)]


def round_training_runs(*, rnd: Round) -> list[TrainingRun]:
    if rnd.batch_id is None:
        return []
    return list(TrainingRun.objects.filter(export__batch_id=rnd.batch_id).order_by("id"))


def rounds_overview(*, n_boot: int = 1000) -> dict:
    """The rounds page: one row per round (oldest first) and the ratings across rounds."""
    rows = []
    for rnd in reversed(list(round_list())):
        rows.append({"round": rnd, "measures": round_measures(rnd=rnd, n_boot=n_boot) if rnd.batch_id else None,
                     "runs": round_training_runs(rnd=rnd)})
    return {"rows": rows, "ratings": model_ratings(n_boot=n_boot)}
