"""Item patterns (distinct per-item category counts) and the confusion matrices built from the
sorted ratings: Fleiss' kappa, percent agreement and Krippendorff's coincidences from patterns,
every rater pair's confusion from slot pairs, each rater's confusion against the others' consensus."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .matrices import EPS
from .ratings import Ratings, factorize

# --- item patterns: Fleiss, percent agreement and alpha, for the estimate and the bootstrap ------


@dataclass(frozen=True)
class Patterns:
    counts: np.ndarray  # (U, K) distinct per-item category counts
    freq: np.ndarray  # (U,) how many items have each pattern
    of_item: np.ndarray  # (n_items,) each item's pattern


def item_counts(r: Ratings) -> np.ndarray:
    k = r.n_categories
    return np.bincount(r.item * k + r.label, minlength=r.n_items * k).reshape(r.n_items, k)


def item_patterns(counts: np.ndarray) -> Patterns:
    n_items, k = counts.shape
    if n_items == 0:
        return Patterns(np.zeros((0, k), dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    base = int(counts.max()) + 1
    if k * math.log2(max(base, 2)) < 62:
        powers = base ** np.arange(k, dtype=np.int64)
        codes, inverse = factorize(counts.astype(np.int64) @ powers)  # O(n) when the codes are dense
        return Patterns((codes[:, None] // powers) % base, np.bincount(inverse, minlength=len(codes)), inverse)
    uniq, inverse, freq = np.unique(counts, axis=0, return_inverse=True, return_counts=True)
    return Patterns(uniq, freq, inverse.reshape(-1))


def fleiss_from_patterns(p: Patterns, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(percent agreement, Fleiss' kappa) for each row of pattern weights (B, U).

    Generalised to items with different numbers of raters (Fleiss 1971 needs a constant number;
    this is the usual extension, e.g. Gwet 2014 ch. 2): per-item agreement is averaged over items
    with at least two ratings, and category shares are the average of per-item shares. With a
    constant number of raters it equals Fleiss' kappa exactly."""
    m = p.counts.sum(axis=1).astype(float)
    multi = m >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        p_item = np.where(multi, (p.counts * (p.counts - 1)).sum(axis=1) / (m * (m - 1)), 0.0)
        shares = np.where(multi[:, None], p.counts / m[:, None], 0.0)
        n_multi = weights @ multi.astype(float)
        p_bar = (weights @ p_item) / n_multi
        p_k = (weights @ shares) / n_multi[:, None]
        p_e = (p_k**2).sum(axis=1)
        kappa = (p_bar - p_e) / (1.0 - p_e)
    p_bar = np.where(n_multi > 0, p_bar, np.nan)
    kappa = np.where((n_multi > 0) & (1.0 - p_e > EPS), kappa, np.nan)
    return p_bar, kappa


def coincidence_from_patterns(p: Patterns, weights: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrices (B, K, K): each item adds n_c (n_k - [c=k]) / (m - 1)."""
    k = p.counts.shape[1]
    m = p.counts.sum(axis=1).astype(float)
    c = p.counts.astype(float)
    per = c[:, :, None] * c[:, None, :] - np.eye(k)[None] * c[:, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where((m >= 2)[:, None, None], per / (m - 1)[:, None, None], 0.0)
    return (weights @ per.reshape(len(m), k * k)).reshape(-1, k, k)


# --- pairwise and leave-one-out confusion matrices ------------------------------------------------


def pair_confusions(r: Ratings, counts_per_item: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All rater pairs that share at least one item: (rater_a codes, rater_b codes, (P, K, K)
    confusion with rater_a's label on rows). Pairs come from slot pairs (s, t) inside each item's
    run of ratings, which is sorted by rater, so rater_a < rater_b always."""
    k, n_r = r.n_categories, r.n_raters
    m = counts_per_item.sum(axis=1)
    start = np.concatenate([[0], np.cumsum(m)[:-1]]).astype(np.int64)
    max_m = int(m.max()) if len(m) else 0
    by_size = np.argsort(-m, kind="stable")
    n_bigger = [int((m > t).sum()) for t in range(max_m)]
    codes = []
    for s, t in combinations(range(max_m), 2):
        items = by_size[: n_bigger[t]]
        ja, jb = start[items] + s, start[items] + t
        pair = r.rater[ja] * n_r + r.rater[jb]
        codes.append((pair * k + r.label[ja]) * k + r.label[jb])
    if not codes:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, k, k), dtype=np.int64)
    code = np.concatenate(codes)
    pair_code = code // (k * k)
    cell = code % (k * k)
    pair_ids, pair_idx = factorize(pair_code)
    conf = np.bincount(pair_idx * (k * k) + cell, minlength=len(pair_ids) * k * k).reshape(-1, k, k)
    return pair_ids // n_r, pair_ids % n_r, conf


def loo_confusions(r: Ratings, pats: Patterns) -> tuple[np.ndarray, np.ndarray]:
    """Per rater: (R, K, K) confusion of their label (rows) against the consensus of the other
    raters of the item (the others' unique most frequent label), and how many of their
    judgments had no such consensus (no other rater, or the others tied).

    The consensus depends only on the item's pattern and the rater's own label, so it is worked
    out once per (pattern, label) - a few dozen cases - and looked up for every judgment."""
    k, n_r = r.n_categories, r.n_raters
    others = pats.counts[:, None, :] - np.eye(k, dtype=pats.counts.dtype)[None, :, :]  # (U, own label, K)
    top = others.max(axis=2)
    unique_top = (others == top[:, :, None]).sum(axis=2) == 1
    consensus_of = np.where((top > 0) & unique_top, others.argmax(axis=2), -1)  # (U, K)
    consensus = consensus_of[pats.of_item[r.item], r.label]
    ok = consensus >= 0
    code = (r.rater[ok] * k + r.label[ok]) * k + consensus[ok]
    conf = np.bincount(code, minlength=n_r * k * k).reshape(n_r, k, k)
    no_consensus = np.bincount(r.rater[~ok], minlength=n_r)
    return conf, no_consensus
