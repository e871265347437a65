"""How a round is measured, on plain arrays (pure numpy: no Django, no models).

- Head to head: each physician judgment of a pair that sets the new policy against the previous
  one scores 1 (new better), 0.5 (tie) or 0 (previous better); the win rate is the mean. Ties count
  half a win for each side, the convention of public model arenas, so a round of ties reads 0.5.
- Bradley-Terry: one strength per model across all rounds, fitted by maximum likelihood with
  Hunter's MM algorithm (2004); a tie is half a win each way. Ratings are on the Elo scale
  (400 / ln 10 per unit of log strength), centred so the models' mean rating is 1000.
- Intervals: percentile bootstrap that resamples *pairs* (all judgments of a pair together), since
  three physicians judging the same two answers are not three independent comparisons.
- Agreement: a judgment's direction is -1 (A better), 0 (tie), +1 (B better).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ELO_SCALE = 400.0 / np.log(10.0)
ELO_CENTRE = 1000.0


def direction(preference: int) -> int:
    """The canonical -2..2 preference as -1 (A better), 0 (tie), +1 (B better)."""
    return int(np.sign(preference))


# ---------------------------------------------------------------- win rate


@dataclass(frozen=True)
class WinRate:
    rate: float | None
    low: float | None
    high: float | None
    wins: int
    ties: int
    losses: int
    pairs: int


def win_rate(scores_by_pair: Sequence[Sequence[float]], *, n_boot: int = 2000, seed: int = 0) -> WinRate:
    """scores_by_pair: per pair, each judgment's score for the new model (1 / 0.5 / 0). The rate
    is the mean over judgments; its 95% interval resamples pairs."""
    groups = [np.asarray(g, dtype=float) for g in scores_by_pair if len(g)]
    flat = np.concatenate(groups) if groups else np.zeros(0)
    wins, ties = int(np.sum(flat == 1.0)), int(np.sum(flat == 0.5))
    losses = int(flat.size - wins - ties)
    if not groups:
        return WinRate(None, None, None, 0, 0, 0, 0)
    rate = float(flat.mean())
    sums = np.array([g.sum() for g in groups])
    counts = np.array([g.size for g in groups])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(groups), size=(n_boot, len(groups)))
    boot = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return WinRate(rate, float(low), float(high), wins, ties, losses, len(groups))


# ---------------------------------------------------------------- Bradley-Terry


def bt_fit(n_models: int, first: np.ndarray, second: np.ndarray, score_first: np.ndarray, *,
           max_iter: int = 10_000, tol: float = 1e-10, prior: float = 0.0) -> np.ndarray:
    """Log strengths (mean 0) maximising sum s*log p(first beats second) + (1-s)*log p(second
    beats first), p = sigmoid(theta_first - theta_second), s in {0, 0.5, 1}.

    `prior` adds that many virtual ties of every model against a virtual average model, which keeps
    the estimate finite when a model won (or lost) every comparison, as in a small bootstrap draw;
    0 gives the plain MLE (infinite when the data separate)."""
    first, second = np.asarray(first, dtype=int), np.asarray(second, dtype=int)
    score_first = np.asarray(score_first, dtype=float)
    wins = np.zeros(n_models)
    np.add.at(wins, first, score_first)
    np.add.at(wins, second, 1.0 - score_first)
    games = np.zeros((n_models, n_models))
    np.add.at(games, (first, second), 1.0)
    games = games + games.T
    strength = np.ones(n_models)
    for _ in range(max_iter):
        # MM update (Hunter 2004): p_i <- W_i / sum_j n_ij / (p_i + p_j); the prior is a tie (half a
        # win) against a model of strength 1.
        denom = (games / (strength[:, None] + strength[None, :])).sum(axis=1) + prior / (strength + 1.0)
        played = denom > 0
        updated = strength.copy()
        updated[played] = (wins[played] + prior / 2.0) / denom[played]
        updated = np.maximum(updated, 1e-300)
        updated /= np.exp(np.mean(np.log(updated)))
        if np.max(np.abs(np.log(updated) - np.log(strength))) < tol:
            strength = updated
            break
        strength = updated
    theta = np.log(strength)
    return theta - theta.mean()


@dataclass(frozen=True)
class Rating:
    model: str
    rating: float
    low: float
    high: float
    comparisons: int


def bt_ratings(comparisons: Sequence[tuple[str, str, float, object]], *, n_boot: int = 1000, seed: int = 0,
               prior: float = 0.5) -> list[Rating]:
    """comparisons: (model_first, model_second, score of first in {0, 0.5, 1}, cluster key - the pair
    judged). One Elo-scale rating per model, best first, with 95% percentile bootstrap intervals
    from resampling clusters. A small prior (half a virtual tie against an average model) keeps
    ratings finite when one model won everything; it shrinks ratings slightly towards 1000."""
    if not comparisons:
        return []
    models = sorted({c[0] for c in comparisons} | {c[1] for c in comparisons})
    index = {m: i for i, m in enumerate(models)}
    first = np.array([index[c[0]] for c in comparisons])
    second = np.array([index[c[1]] for c in comparisons])
    score = np.array([float(c[2]) for c in comparisons])
    clusters: dict[object, list[int]] = {}
    for i, c in enumerate(comparisons):
        clusters.setdefault(c[3], []).append(i)
    groups = [np.array(g) for g in clusters.values()]

    theta = bt_fit(len(models), first, second, score, prior=prior)
    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, len(models)))
    for b in range(n_boot):
        rows = np.concatenate([groups[k] for k in rng.integers(0, len(groups), size=len(groups))])
        boot[b] = bt_fit(len(models), first[rows], second[rows], score[rows], prior=prior, max_iter=2000, tol=1e-8)
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    counts = np.bincount(first, minlength=len(models)) + np.bincount(second, minlength=len(models))
    out = [Rating(m, float(ELO_CENTRE + ELO_SCALE * theta[i]), float(ELO_CENTRE + ELO_SCALE * low[i]),
                  float(ELO_CENTRE + ELO_SCALE * high[i]), int(counts[i])) for i, m in enumerate(models)]
    return sorted(out, key=lambda r: -r.rating)


# ---------------------------------------------------------------- agreement


def majority(directions: Sequence[int]) -> int | None:
    """The physicians' majority direction on one pair: the most common of -1/0/+1 when it is strictly
    the most common, else None (no majority)."""
    if not directions:
        return None
    values, counts = np.unique(np.asarray(directions, dtype=int), return_counts=True)
    top = counts.max()
    if (counts == top).sum() > 1:
        return None
    return int(values[counts.argmax()])


@dataclass(frozen=True)
class Agreement:
    rate: float | None
    n: int


def model_vs_majority(predicted: Sequence[int], directions_by_pair: Sequence[Sequence[int]]) -> Agreement:
    """How often the reward model's predicted side (-1 A, +1 B) matches the physicians' majority,
    over pairs whose majority is a side (not a tie, not split)."""
    hits = n = 0
    for pred, dirs in zip(predicted, directions_by_pair):
        m = majority(dirs)
        if m in (-1, 1) and pred in (-1, 1):
            n += 1
            hits += int(pred == m)
    return Agreement(hits / n if n else None, n)


def physician_vs_others(directions_by_pair: Sequence[Sequence[int]]) -> Agreement:
    """The ceiling for model_vs_majority: how often one physician's side matches the majority of
    the *other* physicians on the same pair (leave-one-out), over judgments where both are sides."""
    hits = n = 0
    for dirs in directions_by_pair:
        for i, own in enumerate(dirs):
            m = majority([d for j, d in enumerate(dirs) if j != i])
            if m in (-1, 1) and own in (-1, 1):
                n += 1
                hits += int(own == m)
    return Agreement(hits / n if n else None, n)


def pairwise_agreement(directions_by_pair: Sequence[Sequence[int]]) -> Agreement:
    """Share of rater pairs on the same item that gave the same direction (ties included)."""
    hits = n = 0
    for dirs in directions_by_pair:
        for i in range(len(dirs)):
            for j in range(i + 1, len(dirs)):
                n += 1
                hits += int(dirs[i] == dirs[j])
    return Agreement(hits / n if n else None, n)


def self_agreement(pairs: Sequence[tuple[int, int]]) -> Agreement:
    """Drift: (earlier direction, later direction) of the same physician on the same anchor pair;
    how often they match (ties included)."""
    n = len(pairs)
    return Agreement(sum(int(a == b) for a, b in pairs) / n if n else None, n)
