"""Deciding a pair: the aggregation policies (majority, unanimous, min_agreement, adjudicated,
dawid_skene), margins and vetoes, rater quality (kappa against the leave-one-out consensus) and
the Dawid-Skene estimator. The definitions are in the package docstring (annotation/exports)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .params import ExportParams
from .votes import DIR_A, DIR_B, DIR_TIE, PairVotes, Vote, direction, votes_summarise


@dataclass(frozen=True, slots=True)
class Decision:
    """What one pair yields. outcome: "a"/"b" (the chosen side), "tie", or None (dropped, see reason)."""

    outcome: str | None
    reason: str | None
    margin: float
    n_votes: int
    n_chosen: int
    n_rejected: int
    n_tie: int
    agreement: float
    source: str
    veto_a: bool
    veto_b: bool
    flags: str


def _plurality(n_a: int, n_tie: int, n_b: int) -> int | None:
    top = max(n_a, n_tie, n_b)
    if [n_a, n_tie, n_b].count(top) > 1:
        return None
    return DIR_A if n_a == top else (DIR_B if n_b == top else DIR_TIE)


def vote_margin(preferences: Iterable[int], chosen: str, weights: Iterable[float] | None = None) -> float:
    """Mean strength of the votes oriented towards `chosen` ("a" or "b"), floored at 0; see the package doc."""
    sign = -1 if chosen == "a" else 1
    prefs = list(preferences)
    if not prefs:
        return 0.0
    w = [1.0] * len(prefs) if weights is None else list(weights)
    total = sum(w)
    if total <= 0:
        return 0.0
    value = sum(sign * p * wi for p, wi in zip(prefs, w)) / total
    return round(min(max(value, 0.0), 2.0), 6)


def pair_decide(
    pair: PairVotes,
    params: ExportParams,
    *,
    votes: list[Vote] | None = None,
    posterior: np.ndarray | None = None,
    rater_weights: dict[int, float] | None = None,
) -> Decision:
    """Decide one pair under params.policy. `votes` are the votes allowed to decide (after rater
    filters; default all); `posterior` is the Dawid-Skene posterior over (A, tie, B)."""
    if pair.summary is not None and votes is None:
        summ = pair.summary
    else:
        all_votes = pair.votes
        votes = all_votes if votes is None else votes
        weights = None
        if params.policy == "dawid_skene":
            rw = rater_weights or {}
            weights = [rw.get(v.rater_id, 1.0) for v in votes]
        summ = votes_summarise(all_votes, votes, params.veto_flags, weights)
    adj = pair.adjudication
    veto_a = summ.veto_a or (adj is not None and adj.a_unsafe)
    veto_b = summ.veto_b or (adj is not None and adj.b_unsafe)
    if veto_a or veto_b:
        flags = ",".join(sorted({*summ.flag_tokens, *(["a:vetoed"] if veto_a else []), *(["b:vetoed"] if veto_b else [])}))
    else:
        flags = ",".join(summ.flag_tokens)
    counts = (summ.n_a, summ.n_tie, summ.n_b)
    n = summ.n_a + summ.n_tie + summ.n_b
    source = "votes"

    def done(outcome, reason, margin=0.0):
        if outcome == "a" or outcome == "b":
            chosen_dir = DIR_A if outcome == "a" else DIR_B
            n_chosen, n_rejected = counts[chosen_dir], counts[2 - chosen_dir]
            agree = n_chosen
        else:
            n_chosen, n_rejected = counts[DIR_A], counts[DIR_B]
            agree = counts[DIR_TIE] if outcome == "tie" else 0
        return Decision(outcome, reason, margin, n, n_chosen, n_rejected, counts[DIR_TIE],
                        round(agree / n, 6) if n else 0.0, source, veto_a, veto_b, flags)

    if pair.is_calibration and not params.include_calibration:
        return done(None, "calibration")
    policy = params.policy
    if policy == "adjudicated" and adj is None:
        return done(None, "not_adjudicated")
    if adj is not None and (params.adjudication_override or policy == "adjudicated"):
        source = "adjudication"
        winner = direction(adj.preference)
    else:
        if n == 0:
            return done(None, "no_votes")
        if n < params.min_votes:
            return done(None, "too_few_votes")
        if policy == "dawid_skene":
            source = "dawid_skene"
            if posterior is None:
                return done(None, "no_votes")
            winner = int(np.argmax(posterior))
        else:
            winner = _plurality(*counts)
            if policy == "unanimous" and max(counts) != n:
                return done(None, "not_unanimous")
            if winner is None:
                return done("tie", "split") if params.ties == "keep" else done(None, "split")
            if policy == "min_agreement" and counts[winner] < params.min_agreement:
                return done(None, "below_min_agreement")
    if winner == DIR_TIE:
        return done("tie", "tie") if params.ties == "keep" else done(None, "tie")
    side = "a" if winner == DIR_A else "b"
    if veto_a and veto_b:
        return done(None, "both_vetoed")
    if (side == "a" and veto_a) or (side == "b" and veto_b):
        return done(None, "chosen_vetoed")
    if source == "adjudication":
        margin = round(float(abs(adj.preference)), 6)
    else:
        # Mean strength towards the chosen side (see vote_margin), from the summary's sums.
        value = (-summ.pref_sum if side == "a" else summ.pref_sum) / summ.weight_sum if summ.weight_sum > 0 else 0.0
        margin = round(min(max(value, 0.0), 2.0), 6)
    return done(side, None, margin)


# --- rater quality -------------------------------------------------------------------------

def rater_kappas(pair_index: np.ndarray, rater_ids: np.ndarray, directions: np.ndarray) -> dict[int, float]:
    """Cohen's kappa of each rater against the leave-one-out consensus: for every vote, the
    strict plurality direction of the *other* votes on the same pair (votes whose others have
    no plurality are skipped). Inputs are parallel arrays, one entry per vote."""
    pair_index = np.asarray(pair_index)
    rater_ids = np.asarray(rater_ids)
    directions = np.asarray(directions, dtype=np.int64)
    if len(directions) == 0:
        return {}
    _, item = np.unique(pair_index, return_inverse=True)
    counts = np.zeros((item.max() + 1, 3), dtype=np.int64)
    np.add.at(counts, (item, directions), 1)
    others = counts[item].copy()
    others[np.arange(len(directions)), directions] -= 1
    top = others.max(axis=1)
    unique_top = (others == top[:, None]).sum(axis=1) == 1
    valid = unique_top & (top > 0)
    consensus = others.argmax(axis=1)
    raters, rater_idx = np.unique(rater_ids, return_inverse=True)
    conf = np.zeros((len(raters), 3, 3), dtype=np.float64)
    np.add.at(conf, (rater_idx[valid], directions[valid], consensus[valid]), 1)
    out = {}
    for r, mat in zip(raters.tolist(), conf):
        total = mat.sum()
        if total == 0:
            continue
        po = np.trace(mat) / total
        pe = float((mat.sum(axis=1) * mat.sum(axis=0)).sum()) / total**2
        out[int(r)] = round(float((po - pe) / (1 - pe)) if pe < 1 else 1.0, 6)
    return out


@dataclass
class DawidSkeneResult:
    pair_ids: np.ndarray  # sorted
    posteriors: np.ndarray  # (n_pairs, 3) over (A, tie, B)
    class_priors: list[float]
    confusion: dict[int, list[list[float]]]  # rater -> P(rater says column | truth is row)
    rater_accuracy: dict[int, float]
    iterations: int
    converged: bool

    def posterior_for(self, pair_id: int) -> np.ndarray | None:
        i = int(np.searchsorted(self.pair_ids, pair_id))
        if i < len(self.pair_ids) and self.pair_ids[i] == pair_id:
            return self.posteriors[i]
        return None

    def summary(self) -> dict:
        """What the manifest keeps: the estimates, not the per-pair posteriors."""
        return {
            "classes": ["A", "tie", "B"],
            "class_priors": self.class_priors,
            "confusion": {str(r): m for r, m in sorted(self.confusion.items())},
            "rater_accuracy": {str(r): a for r, a in sorted(self.rater_accuracy.items())},
            "iterations": self.iterations,
            "converged": self.converged,
        }


def dawid_skene(
    pair_ids: np.ndarray, rater_ids: np.ndarray, directions: np.ndarray, *,
    max_iter: int = 100, tol: float = 1e-6, smoothing: float = 0.01,
) -> DawidSkeneResult:
    """Dawid-Skene EM over the three directions, initialised from vote proportions.
    `smoothing` is a Dirichlet pseudo-count that keeps a rater with few votes from getting
    a confusion matrix of hard zeros (and the log from -inf)."""
    pair_ids = np.asarray(pair_ids, dtype=np.int64)
    rater_ids = np.asarray(rater_ids, dtype=np.int64)
    labels = np.asarray(directions, dtype=np.int64)
    k = 3
    items, item = np.unique(pair_ids, return_inverse=True)
    raters, rater = np.unique(rater_ids, return_inverse=True)
    n_items, n_raters = len(items), len(raters)
    if n_items == 0:
        return DawidSkeneResult(items, np.zeros((0, k)), [1 / 3] * 3, {}, {}, 0, True)
    post = np.zeros((n_items, k))
    np.add.at(post, (item, labels), 1.0)
    post /= post.sum(axis=1, keepdims=True)
    prev_ll = -np.inf
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):
        # M-step
        priors = (post.sum(axis=0) + smoothing) / (n_items + k * smoothing)
        conf = np.full((n_raters, k, k), smoothing)
        np.add.at(conf, (rater, slice(None), labels), post[item])
        conf /= conf.sum(axis=2, keepdims=True)
        # E-step
        log_post = np.tile(np.log(priors), (n_items, 1))
        np.add.at(log_post, item, np.log(conf[rater, :, labels]))
        peak = log_post.max(axis=1, keepdims=True)
        unnorm = np.exp(log_post - peak)
        norm = unnorm.sum(axis=1, keepdims=True)
        post = unnorm / norm
        ll = float((np.log(norm) + peak).sum())
        if abs(ll - prev_ll) < tol * max(1.0, abs(ll)):
            converged = True
            break
        prev_ll = ll
    accuracy = (conf[:, np.arange(k), np.arange(k)] * priors).sum(axis=1)
    return DawidSkeneResult(
        pair_ids=items,
        posteriors=post,
        class_priors=[round(float(p), 6) for p in priors],
        confusion={int(r): np.round(conf[i], 6).tolist() for i, r in enumerate(raters)},
        rater_accuracy={int(r): round(float(accuracy[i]), 6) for i, r in enumerate(raters)},
        iterations=iterations,
        converged=converged,
    )
