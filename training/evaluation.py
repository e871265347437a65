"""Evaluation that means something, as pure numpy on plain arrays (no Django, no torch).

Reward models are scored on the held-out split:
- accuracy: share of pairs where r(chosen) > r(rejected), with a 95% bootstrap interval;
- margin-weighted accuracy: the same, weighting each pair by how strongly physicians preferred
  the chosen answer (a "much better" pair counts more than a "slightly better" one);
- calibration: expected calibration error of p = sigmoid(r_chosen - r_rejected) against the share
  of physicians who preferred the chosen answer (1.0 when only the consensus label is known);
- agreement with held-out physicians next to the physicians' agreement with each other on the
  same pairs: the second figure is the ceiling a reward model can reasonably reach. Both are
  pairwise: the share of (model, physician) vote pairs, and of (physician, physician) vote pairs on
  the same pair, that agree (ties left out).

Policy runs (PPO/GRPO/RLOO) are watched for reward hacking: a KL to the reference or a mean response
length that runs away is flagged."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def expected_calibration_error(probs: Sequence[float], labels: Sequence[float], *, n_bins: int = 10) -> float:
    """ECE with equal-width bins over [0, 1]. `labels` may be soft (a share in [0, 1])."""
    p = np.asarray(probs, dtype=float)
    y = np.asarray(labels, dtype=float)
    if p.size == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return float(ece)


def bootstrap_interval(values: Sequence[float], *, n_resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (e.g. 1/0 per pair for accuracy, or a
    per-pair difference of two models' hits for a paired comparison). Seeded: same input, same
    interval. Returns (nan, nan) for no values."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def _sign(x: float) -> int:
    return int(x > 0) - int(x < 0)


def reward_model_report(
    *,
    rewards_chosen: Sequence[float],
    rewards_rejected: Sequence[float],
    margins: Sequence[float] | None = None,
    votes: Sequence[Sequence[int]] | None = None,
    rater_disjoint: Sequence[bool] | None = None,
    n_bins: int = 10,
) -> dict:
    """Held-out scores of a reward model.

    rewards_chosen/rewards_rejected: the model's scalar rewards per held-out pair.
    margins: physicians' preference strength per pair (>= 0), used as weights.
    votes: per pair, each held-out physician's vote oriented to the pair's chosen answer
        (+ prefers chosen, - prefers rejected, 0 tie). Enables the physician-agreement figures.
    rater_disjoint: per pair, True when none of its raters labelled any training pair."""
    rc = np.asarray(rewards_chosen, dtype=float)
    rr = np.asarray(rewards_rejected, dtype=float)
    if rc.shape != rr.shape:
        raise ValueError("rewards_chosen and rewards_rejected differ in length")
    n = int(rc.size)
    report: dict = {"n_pairs": n}
    if n == 0:
        return report
    diff = rc - rr
    correct = (diff > 0).astype(float)
    report["accuracy"] = float(correct.mean())
    # How sure the figure is: a 95% bootstrap interval over the held-out pairs (n_pairs above).
    report["accuracy_ci_low"], report["accuracy_ci_high"] = bootstrap_interval(correct)
    report["mean_margin"] = float(diff.mean())
    if margins is not None:
        w = np.asarray(margins, dtype=float)
        # A zero margin (a tie that still made it into the export) carries no preference to get right.
        report["margin_weighted_accuracy"] = float((w * correct).sum() / w.sum()) if w.sum() > 0 else None
    probs = _sigmoid(diff)

    soft = np.ones(n)
    if votes is not None:
        for i, pair_votes in enumerate(votes):
            decisive = [v for v in pair_votes if v != 0]
            if decisive:
                soft[i] = sum(v > 0 for v in decisive) / len(decisive)
    # Score both orientations of every pair, so a model that always says "chosen" with p=1 is not
    # called perfectly calibrated just because every label in the oriented frame is 1.
    report["ece"] = expected_calibration_error(np.concatenate([probs, 1 - probs]), np.concatenate([soft, 1 - soft]), n_bins=n_bins)

    if votes is not None:
        model_hits, model_total, rater_hits, rater_total = 0, 0, 0, 0
        for d, pair_votes in zip(diff, votes):
            decisive = [_sign(v) for v in pair_votes if v != 0]
            if _sign(d) != 0:
                model_hits += sum(v == _sign(d) for v in decisive)
                model_total += len(decisive)
            for a, b in itertools.combinations(decisive, 2):
                rater_hits += a == b
                rater_total += 1
        report["agreement_with_physicians"] = model_hits / model_total if model_total else None
        report["physician_agreement_ceiling"] = rater_hits / rater_total if rater_total else None
        report["n_physician_votes"] = model_total

    if rater_disjoint is not None:
        mask = np.asarray(rater_disjoint, dtype=bool)
        report["rater_disjoint_n_pairs"] = int(mask.sum())
        report["rater_disjoint_accuracy"] = float(correct[mask].mean()) if mask.any() else None
    return report


def _series(points: Sequence[dict], *keys: str) -> list[float]:
    for key in keys:
        values = [float(p[key]) for p in points if isinstance(p.get(key), (int, float)) and math.isfinite(p[key])]
        if values:
            return values
    return []


# Names the TRL trainers log the same quantity under.
KL_KEYS = ("objective/kl", "kl")
LENGTH_KEYS = ("monitor/response_length", "completions/mean_length")
REWARD_KEYS = ("objective/scores", "reward", "rewards/margins")
ENTROPY_KEYS = ("objective/entropy", "entropy", "policy/entropy_avg")


def policy_monitor_flags(
    points: Sequence[dict],
    *,
    kl_limit: float = 6.0,
    length_growth_limit: float = 1.5,
    max_length: int | None = None,
) -> dict:
    """Reward-hacking monitors over a policy run's logged points.

    KL runs away when its last value passes kl_limit. Length runs away when the mean response length
    grows past length_growth_limit times where it started, or sits at the generation limit (the
    policy learned that longer scores higher and never stops)."""
    kl = _series(points, *KL_KEYS)
    length = _series(points, *LENGTH_KEYS)
    reward = _series(points, *REWARD_KEYS)
    entropy = _series(points, *ENTROPY_KEYS)
    flags: list[str] = []
    if kl and kl[-1] > kl_limit:
        flags.append(f"kl_runaway: KL to the reference reached {kl[-1]:.2f} (> {kl_limit})")
    if len(length) >= 2 and length[0] > 0 and length[-1] / length[0] > length_growth_limit:
        flags.append(f"length_runaway: mean response length grew {length[-1] / length[0]:.2f}x ({length[0]:.1f} -> {length[-1]:.1f})")
    elif length and max_length and length[-1] >= 0.98 * max_length and (len(length) < 2 or length[0] < 0.98 * max_length):
        flags.append(f"length_runaway: responses hit the {max_length}-token limit")
    return {
        "kl_last": kl[-1] if kl else None,
        "kl_max": max(kl) if kl else None,
        "length_first": length[0] if length else None,
        "length_last": length[-1] if length else None,
        "reward_first": reward[0] if reward else None,
        "reward_last": reward[-1] if reward else None,
        "entropy_last": entropy[-1] if entropy else None,
        "flags": flags,
        "flagged": bool(flags),
    }


def metrics_compare(current: dict, previous: dict | None) -> dict:
    """Per-metric deltas between two runs' final metrics (numbers only)."""
    if not previous:
        return {}
    out = {}
    for key, value in current.items():
        old = previous.get(key)
        if isinstance(value, (int, float)) and isinstance(old, (int, float)) and not isinstance(value, bool):
            out[key] = {"current": value, "previous": old, "delta": value - old}
    return out
