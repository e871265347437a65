"""Inter-rater agreement on plain numpy arrays: no Django in here, so it is tested against the
reference implementations (scikit-learn, statsmodels, krippendorff) on the same arrays.

Everything works from long-format ratings (one row per judgment: item, rater, label) that
`ratings_build` factorises and sorts by (item, rater) once. From there:

- an items x categories count matrix gives Fleiss' kappa, percent agreement and Krippendorff's
  coincidence matrix without visiting items one by one;
- the rater pairs that met on an item come from slot pairs inside each item's (sorted) run, and
  all pairwise confusion matrices from one `np.bincount` over combined codes;
- the bootstrap over items uses the fact that Fleiss' kappa and alpha depend on an item only
  through its count vector ("pattern"): resampling n items with replacement is exactly a
  multinomial draw over pattern frequencies, so 1,000 resamples cost 1,000 x (few dozen
  patterns) instead of 1,000 x n items. A pair's (or a rater's) kappa depends on its shared items
  only through their confusion cells, so its bootstrap is a multinomial over those cells.

Undefined figures (one rater, no overlap, chance agreement of 1) are None with a note in
`notes`, never NaN: JSON consumers and the training gate must not see NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

LEVELS = ("five", "three", "binary")
METRICS = ("nominal", "ordinal", "interval")
LEVEL_SCALES = {
    "five": (-2, -1, 0, 1, 2),
    "three": (-1, 0, 1),
    "binary": (-1, 1),
}
LEVEL_CATEGORY_NAMES = {
    "five": ("A much better", "A better", "About the same", "B better", "B much better"),
    "three": ("A better", "Tie", "B better"),
    "binary": ("A better", "B better"),
}
CI_MIN_DEFINED_SHARE = 0.5  # below this share of defined resamples, a percentile CI means little
_EPS = 1e-12


@dataclass(frozen=True)
class Ratings:
    """Factorised long-format ratings, sorted by (item, rater), one judgment per (item, rater).

    `label` holds category codes: `categories[label[j]]` is the value. Optional per-judgment
    arrays: `picked_first` (1 chose the response shown first, 0 the second, -1 neither) and
    `time_ms` (float, NaN when unknown). `gold` is per item: a category code, or -1."""

    item: np.ndarray
    rater: np.ndarray
    label: np.ndarray
    categories: tuple
    item_ids: np.ndarray
    rater_ids: tuple
    gold: np.ndarray | None = None
    picked_first: np.ndarray | None = None
    time_ms: np.ndarray | None = None
    tie_code: int | None = None
    notes: tuple = ()

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_raters(self) -> int:
        return len(self.rater_ids)

    @property
    def n_categories(self) -> int:
        return len(self.categories)


# --- building ---------------------------------------------------------------------------------


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values, code of each value). Dense integer ids take an O(n) path: this
    runs on a million judgments and np.unique's sort would be a quarter of the time budget."""
    if values.size and values.dtype.kind in "iu":
        lo, hi = int(values.min()), int(values.max())
        span = hi - lo + 1
        if span <= 4 * values.size + 1024:
            offset = values.astype(np.int64) - lo
            present = np.zeros(span, dtype=bool)
            present[offset] = True
            code_of = np.cumsum(present) - 1
            return np.flatnonzero(present) + lo, code_of[offset]
    uniques, codes = np.unique(values, return_inverse=True)
    return uniques, codes.reshape(-1)


def ratings_build(
    *,
    item,
    rater,
    label,
    categories=None,
    gold: dict | None = None,
    picked_first=None,
    time_ms=None,
    tie_value=None,
) -> Ratings:
    """Factorise long-format arrays into `Ratings`.

    `categories` fixes the scale and its order (ordinal and interval metrics use it); by default
    the sorted distinct labels. `gold` maps item id -> gold label value. A rater who rated an
    item twice keeps the last rating (noted)."""
    item = np.asarray(item)
    rater = np.asarray(rater)
    label = np.asarray(label)
    n = len(item)
    if not (len(rater) == n and len(label) == n):
        raise ValueError("item, rater and label must have the same length")
    notes: list[str] = []

    if categories is None:
        cat_values = np.unique(label) if n else np.array([])
    else:
        cat_values = np.asarray(categories)
        if len(np.unique(cat_values)) != len(cat_values):
            raise ValueError("categories must be distinct")
    label_code = _codes_in(label, cat_values, what="label")

    item_ids, item_code = factorize(item)
    rater_ids, rater_code = factorize(rater)
    n_raters = len(rater_ids)

    # One stable sort by (item, rater): groups each item's ratings and, among duplicates of one
    # (item, rater), keeps their input order so "last wins" is well defined.
    key = item_code.astype(np.int64) * max(n_raters, 1) + rater_code
    order = None  # None: already in (item, rater) order, the usual case for database rows
    if n > 1 and not (key[1:] >= key[:-1]).all():
        order = np.argsort(key, kind="stable")
        key = key[order]
    keep = np.ones(n, dtype=bool)
    if n > 1:
        keep[:-1] = key[:-1] != key[1:]
    dropped = int(n - keep.sum())
    if dropped:
        notes.append(f"{dropped} repeated rating(s) of an item by the same rater were dropped; the last one counts.")
    if order is None and not dropped:
        sel = slice(None)  # no gathers needed
    else:
        sel = (np.arange(n) if order is None else order)[keep]

    gold_code = None
    if gold:
        # Gold labels for items nobody rated (or off this scale, e.g. a tie at the binary level) are
        # simply not scored.
        gold_items = np.asarray(list(gold.keys()))
        gold_values = np.asarray(list(gold.values()))
        pos = np.minimum(np.searchsorted(item_ids, gold_items), max(len(item_ids) - 1, 0))
        ok = (item_ids[pos] == gold_items) & np.isin(gold_values, cat_values) if len(item_ids) else np.zeros(len(gold_items), bool)
        gold_code = np.full(len(item_ids), -1, dtype=np.int64)
        gold_code[pos[ok]] = _codes_in(gold_values[ok], cat_values, what="gold label")

    tie_code = None
    if tie_value is not None and tie_value in set(cat_values.tolist()):
        tie_code = int(np.flatnonzero(cat_values == tie_value)[0])

    return Ratings(
        item=item_code[sel].astype(np.int64, copy=False),
        rater=rater_code[sel].astype(np.int64, copy=False),
        label=label_code[sel],
        categories=tuple(cat_values.tolist()),
        item_ids=item_ids,
        rater_ids=tuple(rater_ids.tolist()),
        gold=gold_code,
        picked_first=None if picked_first is None else np.asarray(picked_first, dtype=np.int8)[sel],
        time_ms=None if time_ms is None else np.asarray(time_ms, dtype=np.float64)[sel],
        tie_code=tie_code,
        notes=tuple(notes),
    )


def _codes_in(values: np.ndarray, categories: np.ndarray, *, what: str) -> np.ndarray:
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    if values.dtype.kind in "iu" and categories.dtype.kind in "iu" and len(categories):
        # Small integer scales (preferences): a lookup table instead of a binary search.
        lo = min(int(values.min()), int(categories.min()))
        hi = max(int(values.max()), int(categories.max()))
        if hi - lo < 4096:
            lut = np.full(hi - lo + 1, -1, dtype=np.int64)
            lut[categories.astype(np.int64) - lo] = np.arange(len(categories))
            codes = lut[values.astype(np.int64) - lo]
            if (codes < 0).any():
                raise ValueError(f"{what} {values[np.argmax(codes < 0)]!r} is not on the scale {list(categories)}")
            return codes
    order = np.argsort(categories, kind="stable")
    sorted_cats = categories[order]
    pos = np.searchsorted(sorted_cats, values)
    pos_c = np.minimum(pos, len(sorted_cats) - 1)
    bad = sorted_cats[pos_c] != values if len(sorted_cats) else np.ones(len(values), dtype=bool)
    if bad.any():
        raise ValueError(f"{what} {values[np.argmax(bad)]!r} is not on the scale {list(categories)}")
    return order[pos_c].astype(np.int64)


def preference_at_level(preference, level: str) -> tuple[np.ndarray, np.ndarray]:
    """Map canonical -2..2 preferences to a granularity: (values, mask of judgments kept).
    'three' keeps the direction and the tie; 'binary' keeps the direction and drops ties."""
    pref = np.asarray(preference, dtype=np.int64)
    if level == "five":
        return pref, np.ones(len(pref), dtype=bool)
    if level == "three":
        return np.sign(pref), np.ones(len(pref), dtype=bool)
    if level == "binary":
        return np.sign(pref), pref != 0
    raise ValueError(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")


def picked_first_from_preference(preference, a_shown_first) -> np.ndarray:
    """1 when the rater preferred the response shown first (left), 0 the second, -1 for a tie."""
    pref = np.asarray(preference)
    first = np.asarray(a_shown_first, dtype=bool)
    out = np.where((pref < 0) == first, 1, 0).astype(np.int8)
    out[pref == 0] = -1
    return out


# --- statistics on confusion and coincidence matrices -------------------------------------------


def disagreement_weights(k: int, weights: str | None) -> np.ndarray:
    """Cohen's disagreement weights on category positions, as scikit-learn defines them."""
    idx = np.arange(k)
    if weights is None:
        return 1.0 - np.eye(k)
    if weights == "linear":
        return np.abs(idx[:, None] - idx[None, :]).astype(float)
    if weights == "quadratic":
        return ((idx[:, None] - idx[None, :]) ** 2).astype(float)
    raise ValueError(f"unknown weights {weights!r}")


def kappa_from_confusion(conf: np.ndarray, weights: str | None = None) -> np.ndarray:
    """Cohen's kappa for a stack of K x K confusion matrices (..., K, K); NaN where undefined
    (no items, or expected disagreement 0 because both raters used one and the same label)."""
    conf = np.asarray(conf, dtype=np.float64)
    k = conf.shape[-1]
    w = disagreement_weights(k, weights)
    n = conf.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rows = conf.sum(axis=-1) / n[..., None]
        cols = conf.sum(axis=-2) / n[..., None]
        observed = (conf * w).sum(axis=(-2, -1)) / n
        expected = np.einsum("...i,ij,...j->...", rows, w, cols)
        kappa = 1.0 - observed / expected
    return np.where((n > 0) & (expected > _EPS), kappa, np.nan)


def _ordinal_delta2(marginals: np.ndarray) -> np.ndarray:
    """Krippendorff's ordinal distance, from the coincidence marginals (..., K) -> (..., K, K)."""
    cum = np.cumsum(marginals, axis=-1)
    a = cum[..., None, :] - cum[..., :, None] + (marginals[..., :, None] - marginals[..., None, :]) / 2.0
    return a**2


def alpha_from_coincidence(o: np.ndarray, metric: str, values: np.ndarray | None = None) -> np.ndarray:
    """Krippendorff's alpha from a stack of coincidence matrices (..., K, K); NaN if undefined."""
    o = np.asarray(o, dtype=np.float64)
    k = o.shape[-1]
    marg = o.sum(axis=-1)
    n = marg.sum(axis=-1)
    if metric == "nominal":
        d2 = np.broadcast_to(1.0 - np.eye(k), o.shape)
    elif metric == "interval":
        v = np.arange(k, dtype=float) if values is None else np.asarray(values, dtype=float)
        d2 = np.broadcast_to((v[:, None] - v[None, :]) ** 2, o.shape)
    elif metric == "ordinal":
        d2 = _ordinal_delta2(marg)
    else:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    observed = (o * d2).sum(axis=(-2, -1))
    expected = np.einsum("...i,...ij,...j->...", marg, d2, marg)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = 1.0 - (n - 1.0) * observed / expected
    return np.where((n > 1) & (expected > _EPS), alpha, np.nan)


# --- item patterns: Fleiss, percent agreement and alpha, for the estimate and the bootstrap ------


@dataclass(frozen=True)
class _Patterns:
    counts: np.ndarray  # (U, K) distinct per-item category counts
    freq: np.ndarray  # (U,) how many items have each pattern
    of_item: np.ndarray  # (n_items,) each item's pattern


def _item_counts(r: Ratings) -> np.ndarray:
    k = r.n_categories
    return np.bincount(r.item * k + r.label, minlength=r.n_items * k).reshape(r.n_items, k)


def _patterns(counts: np.ndarray) -> _Patterns:
    n_items, k = counts.shape
    if n_items == 0:
        return _Patterns(np.zeros((0, k), dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    base = int(counts.max()) + 1
    if k * math.log2(max(base, 2)) < 62:
        powers = base ** np.arange(k, dtype=np.int64)
        codes, inverse = factorize(counts.astype(np.int64) @ powers)  # O(n) when the codes are dense
        return _Patterns((codes[:, None] // powers) % base, np.bincount(inverse, minlength=len(codes)), inverse)
    uniq, inverse, freq = np.unique(counts, axis=0, return_inverse=True, return_counts=True)
    return _Patterns(uniq, freq, inverse.reshape(-1))


def _fleiss_from_patterns(p: _Patterns, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    kappa = np.where((n_multi > 0) & (1.0 - p_e > _EPS), kappa, np.nan)
    return p_bar, kappa


def _coincidence_from_patterns(p: _Patterns, weights: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrices (B, K, K): each item adds n_c (n_k - [c=k]) / (m - 1)."""
    k = p.counts.shape[1]
    m = p.counts.sum(axis=1).astype(float)
    c = p.counts.astype(float)
    per = c[:, :, None] * c[:, None, :] - np.eye(k)[None] * c[:, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where((m >= 2)[:, None, None], per / (m - 1)[:, None, None], 0.0)
    return (weights @ per.reshape(len(m), k * k)).reshape(-1, k, k)


# --- pairwise and leave-one-out confusion matrices ------------------------------------------------


def _pair_confusions(r: Ratings, counts_per_item: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _loo_confusions(r: Ratings, pats: _Patterns) -> tuple[np.ndarray, np.ndarray]:
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


# --- bootstrap -----------------------------------------------------------------------------------


def _percentile_ci(samples: np.ndarray) -> list[float] | None:
    """95% percentile interval over the defined resamples; None when most are undefined."""
    finite = samples[np.isfinite(samples)]
    if samples.size == 0 or finite.size < CI_MIN_DEFINED_SHARE * samples.size:
        return None
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [float(lo), float(hi)]


def _bootstrap_confusions(conf: np.ndarray, resamples: int, rng: np.random.Generator, weightings) -> dict:
    """For each confusion matrix, resample its items (multinomially over its cells) and return
    {weighting: (P, 2) CI array with NaN where no CI}."""
    p, k, _ = conf.shape
    out = {w: np.full((p, 2), np.nan) for w in weightings}
    n = conf.sum(axis=(1, 2))
    flat = conf.reshape(p, k * k).astype(float)
    chunk = max(1, 4_000_000 // max(resamples * k * k, 1))
    for lo in range(0, p, chunk):
        sl = slice(lo, min(lo + chunk, p))
        nn = n[sl]
        live = nn > 0
        if not live.any():
            continue
        probs = flat[sl][live] / nn[live][:, None]
        draws = rng.multinomial(nn[live][:, None], probs[:, None, :], size=(int(live.sum()), resamples))
        draws = draws.reshape(-1, resamples, k, k)
        idx = np.arange(sl.start, sl.stop)[live]
        for w in weightings:
            kap = kappa_from_confusion(draws, w)
            for row, samples in zip(idx, kap):
                ci = _percentile_ci(samples)
                if ci is not None:
                    out[w][row] = ci
    return out


# --- the report ----------------------------------------------------------------------------------


def landis_koch(value: float | None) -> str | None:
    """Landis & Koch (1977) wording for a kappa-like figure."""
    if value is None:
        return None
    if value < 0:
        return "poor"
    for bound, word in ((0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial")):
        if value <= bound:
            return word
    return "almost perfect"


def _num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _ci(row) -> list[float] | None:
    if row is None or not np.all(np.isfinite(row)):
        return None
    return [float(row[0]), float(row[1])]


def _jsonable(value):
    return value.item() if isinstance(value, np.generic) else value


def _headline(
    counts: np.ndarray, *, n_raters: int, categories, metric: str, bootstrap: int, rng, pats: _Patterns | None = None
) -> dict:
    """Percent agreement, Fleiss' kappa and Krippendorff's alpha (with CIs), from item patterns:
    the same code gives the estimate (weights = pattern frequencies) and the bootstrap."""
    notes = []
    n_items, k = counts.shape
    n_multi = int((counts.sum(axis=1) >= 2).sum())
    if n_raters == 0:
        notes.append("No ratings: nothing to measure.")
    elif n_raters == 1:
        notes.append("Only one rater: agreement between raters is undefined.")
    elif n_multi == 0:
        notes.append("No item was rated by two or more raters: agreement is undefined.")
    if n_items == 1:
        notes.append("Only one item: chance agreement rests on one item's labels; read any figure with care.")

    metrics = ("nominal", "ordinal", "interval") if metric in ("ordinal", "interval") else ("nominal",)
    values = np.asarray(categories, dtype=float) if metric == "interval" else None
    pct = fleiss = alpha = np.array([np.nan])
    alpha_by_metric = dict.fromkeys(metrics, np.nan)
    pct_ci = fleiss_ci = alpha_ci = None
    if k and n_multi:
        pats = pats if pats is not None else _patterns(counts)
        point = pats.freq[None, :].astype(float)
        pct, fleiss = _fleiss_from_patterns(pats, point)
        coinc = _coincidence_from_patterns(pats, point)
        alpha = alpha_from_coincidence(coinc, metric, values)
        for mt in metrics:
            alpha_by_metric[mt] = alpha_from_coincidence(coinc, mt, values if mt == "interval" else None)[0]
        if not math.isfinite(fleiss[0]):
            notes.append("Every rating on multiply-rated items has the same category: chance agreement is 1, so Fleiss' kappa is undefined.")
        if not math.isfinite(alpha[0]):
            notes.append("No variation among pairable values: Krippendorff's alpha is undefined.")
        if bootstrap:
            draws = rng.multinomial(n_items, pats.freq / pats.freq.sum(), size=bootstrap).astype(float)
            b_pct, b_fleiss = _fleiss_from_patterns(pats, draws)
            b_alpha = alpha_from_coincidence(_coincidence_from_patterns(pats, draws), metric, values)
            pct_ci, fleiss_ci, alpha_ci = _percentile_ci(b_pct), _percentile_ci(b_fleiss), _percentile_ci(b_alpha)
    return {
        "n_items_multiply_rated": n_multi,
        "percent_agreement": _num(pct[0]),
        "percent_agreement_ci": pct_ci,
        "fleiss_kappa": _num(fleiss[0]),
        "fleiss_kappa_ci": fleiss_ci,
        "krippendorff_alpha": _num(alpha[0]),
        "krippendorff_alpha_ci": alpha_ci,
        "krippendorff_alpha_by_metric": {mt: _num(v) for mt, v in alpha_by_metric.items()},
        "notes": notes,
    }


def agreement_headline(ratings: Ratings, *, metric: str = "nominal", bootstrap: int = 0, seed: int = 0) -> dict:
    """Only the batch-level figures (no pairwise or per-rater tables): cheap enough to run once
    per rubric criterion."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    return _headline(_item_counts(ratings), n_raters=ratings.n_raters, categories=ratings.categories, metric=metric,
                     bootstrap=bootstrap, rng=np.random.default_rng(seed))


def agreement_headline_codes(
    *, item_code: np.ndarray, rater_code: np.ndarray, label_code: np.ndarray, n_items: int, categories, metric: str = "nominal"
) -> dict:
    """`agreement_headline` for labels already factorised against known item codes (e.g. each
    rubric criterion of the same judgments): no second factorisation or sort. Assumes one rating
    per (item, rater)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    k = len(categories)
    counts = np.bincount(item_code * k + label_code, minlength=n_items * k).reshape(n_items, k)
    n_raters = len(np.unique(rater_code)) if len(rater_code) else 0
    head = _headline(counts, n_raters=n_raters, categories=categories, metric=metric, bootstrap=0, rng=None)
    head["n_judgments"] = int(len(item_code))
    return head


def agreement_report(
    ratings: Ratings,
    *,
    metric: str = "nominal",
    level: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict:
    """Every figure for one set of ratings, as a JSON-ready dict (the `agreement --json` object).

    metric: 'nominal', 'ordinal' or 'interval' decides Krippendorff's alpha; with an ordered
    scale (ordinal/interval) pairwise kappas also come linearly and quadratically weighted.
    bootstrap: number of resamples over items for 95% CIs (0: none); `seed` makes them
    reproducible."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    r = ratings
    notes = list(r.notes)
    k = r.n_categories
    ordered = metric in ("ordinal", "interval")
    weightings = (None, "linear", "quadratic") if ordered else (None,)
    rng = np.random.default_rng(seed)

    counts = _item_counts(r)
    pats = _patterns(counts)
    head = _headline(counts, n_raters=r.n_raters, categories=r.categories, metric=metric, bootstrap=bootstrap, rng=rng, pats=pats)
    notes += head.pop("notes")

    # Pairwise Cohen's kappa.
    ra, rb, conf = _pair_confusions(r, counts) if k else (np.zeros(0, int), np.zeros(0, int), np.zeros((0, 0, 0)))
    pair_kappa = {w: kappa_from_confusion(conf, w) for w in weightings}
    pair_agree = np.trace(conf, axis1=1, axis2=2) / np.maximum(conf.sum(axis=(1, 2)), 1)
    pair_ci = _bootstrap_confusions(conf, bootstrap, rng, weightings) if bootstrap and len(conf) else {}
    n_undef = int(np.isnan(pair_kappa[None]).sum())
    if n_undef:
        notes.append(f"{n_undef} rater pair(s) have an undefined Cohen's kappa: on their shared items both used one and the same label.")
    cohen = []
    for i in range(len(ra)):
        entry = {
            "rater_a": _jsonable(r.rater_ids[ra[i]]),
            "rater_b": _jsonable(r.rater_ids[rb[i]]),
            "n": int(conf[i].sum()),
            "percent_agreement": _num(pair_agree[i]),
            "kappa": _num(pair_kappa[None][i]),
        }
        if bootstrap:
            entry["kappa_ci"] = _ci(pair_ci[None][i]) if pair_ci else None
        if ordered:
            entry["kappa_linear"] = _num(pair_kappa["linear"][i])
            entry["kappa_quadratic"] = _num(pair_kappa["quadratic"][i])
            if bootstrap:
                entry["kappa_linear_ci"] = _ci(pair_ci["linear"][i]) if pair_ci else None
                entry["kappa_quadratic_ci"] = _ci(pair_ci["quadratic"][i]) if pair_ci else None
        cohen.append(entry)
    defined = pair_kappa[None][np.isfinite(pair_kappa[None])]
    mean_kappa = float(defined.mean()) if defined.size else None

    per_rater = _per_rater(r, pats, bootstrap=bootstrap, rng=rng, ra=ra, rb=rb, pair_kappa=pair_kappa[None])

    report = {
        "level": level,
        "metric": metric,
        "categories": [_jsonable(c) for c in r.categories],
        "n_judgments": int(len(r.item)),
        "n_items": int(r.n_items),
        "n_raters": int(r.n_raters),
        "percent_agreement": head["percent_agreement"],
        "percent_agreement_ci": head["percent_agreement_ci"],
        "fleiss_kappa": head["fleiss_kappa"],
        "fleiss_kappa_ci": head["fleiss_kappa_ci"],
        "krippendorff_alpha": head["krippendorff_alpha"],
        "krippendorff_alpha_ci": head["krippendorff_alpha_ci"],
        "krippendorff_alpha_by_metric": head["krippendorff_alpha_by_metric"],
        "n_items_multiply_rated": head["n_items_multiply_rated"],
        "mean_cohen_kappa": mean_kappa,
        "interpretation": {
            "fleiss_kappa": landis_koch(head["fleiss_kappa"]),
            "krippendorff_alpha": landis_koch(head["krippendorff_alpha"]),
            "mean_cohen_kappa": landis_koch(mean_kappa),
            "scale": "Landis & Koch (1977)",
        },
        "cohen_kappa": cohen,
        "per_rater": per_rater,
        "bootstrap": {"resamples": int(bootstrap), "seed": int(seed), "interval": "95% percentile, items resampled"} if bootstrap else None,
        "notes": notes,
    }
    return report


def _per_rater(r: Ratings, pats: _Patterns, *, bootstrap: int, rng, ra, rb, pair_kappa) -> list[dict]:
    n_r, k = r.n_raters, r.n_categories
    if n_r == 0:
        return []
    n_judged = np.bincount(r.rater, minlength=n_r)
    loo_conf, no_consensus = _loo_confusions(r, pats) if k else (np.zeros((n_r, 0, 0)), np.zeros(n_r, int))
    loo_kappa = kappa_from_confusion(loo_conf) if k else np.full(n_r, np.nan)
    loo_ci = _bootstrap_confusions(loo_conf, bootstrap, rng, (None,))[None] if bootstrap and k else None

    # Mean of each rater's pairwise kappas: one number per rater for the heatmap's margin.
    finite = np.isfinite(pair_kappa)
    sums = np.bincount(ra[finite], weights=pair_kappa[finite], minlength=n_r) + np.bincount(rb[finite], weights=pair_kappa[finite], minlength=n_r)
    nums = np.bincount(ra[finite], minlength=n_r) + np.bincount(rb[finite], minlength=n_r)

    gold_n = gold_correct = None
    if r.gold is not None:
        g = r.gold[r.item]
        on_gold = g >= 0
        gold_n = np.bincount(r.rater[on_gold], minlength=n_r)
        gold_correct = np.bincount(r.rater[on_gold], weights=(r.label[on_gold] == g[on_gold]).astype(float), minlength=n_r)

    ties = None
    if r.tie_code is not None:
        ties = np.bincount(r.rater, weights=(r.label == r.tie_code).astype(float), minlength=n_r)

    pos_n = pos_first = None
    if r.picked_first is not None:
        decided = r.picked_first >= 0
        pos_n = np.bincount(r.rater[decided], minlength=n_r)
        pos_first = np.bincount(r.rater[decided], weights=r.picked_first[decided].astype(float), minlength=n_r)

    medians = None
    if r.time_ms is not None:
        medians = _group_medians(r.rater, r.time_ms, n_r)

    p_values = None
    if pos_n is not None:
        p_values = _binomial_test_half(np.rint(pos_first).astype(np.int64), pos_n)

    rows = []
    for i in range(n_r):
        row = {
            "rater": _jsonable(r.rater_ids[i]),
            "n": int(n_judged[i]),
            "kappa_vs_consensus": _num(loo_kappa[i]),
            "n_consensus": int(loo_conf[i].sum()) if k else 0,
            "n_no_consensus": int(no_consensus[i]),
            "mean_pairwise_kappa": _num(sums[i] / nums[i]) if nums[i] else None,
        }
        if bootstrap:
            row["kappa_vs_consensus_ci"] = _ci(loo_ci[i]) if loo_ci is not None else None
        row["gold_n"] = int(gold_n[i]) if gold_n is not None else 0
        row["gold_accuracy"] = _num(gold_correct[i] / gold_n[i]) if gold_n is not None and gold_n[i] else None
        row["tie_share"] = _num(ties[i] / n_judged[i]) if ties is not None and n_judged[i] else None
        if pos_n is not None and pos_n[i]:
            kk, nn = int(round(pos_first[i])), int(pos_n[i])
            row.update(position_n=nn, position_first_share=kk / nn, position_p_value=float(p_values[i]))
        else:
            row.update(position_n=int(pos_n[i]) if pos_n is not None else 0, position_first_share=None, position_p_value=None)
        row["median_time_ms"] = _num(medians[i]) if medians is not None else None
        rows.append(row)
    return rows


def _binomial_test_half(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Two-sided exact binomial test against p = 0.5 for many (k, n) at once. With p = 0.5 the
    distribution is symmetric, so scipy.stats.binomtest's p-value (sum of outcomes no likelier
    than k) is min(1, 2 * P(X <= min(k, n - k))); one vectorised call instead of one per rater."""
    from scipy.stats import binom  # scipy.stats is slow to import; only pay for it when needed

    tail = binom.cdf(np.minimum(k, n - k), n, 0.5)
    return np.where(n > 0, np.minimum(1.0, 2.0 * tail), np.nan)


def _group_medians(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of `values` per group code (NaN values ignored; NaN for an empty group)."""
    ok = np.isfinite(values)
    g, v = group[ok], values[ok]
    # A stable sort of 16-bit codes is a radix sort: grouping a million values costs ~10 ms.
    order = np.argsort(g.astype(np.int16) if n_groups < 2**15 else g, kind="stable")
    v = v[order]
    sizes = np.bincount(g, minlength=n_groups)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return np.array([np.median(v[bounds[i]:bounds[i + 1]]) if sizes[i] else np.nan for i in range(n_groups)])


def disputed_items(item, preference) -> dict[str, np.ndarray]:
    """Items whose raters disagree on the direction (A better / tie / B better), most disputed
    first: raters on opposite sides before mere tie-vs-preference splits, then by the share of
    raters outside the largest camp, then by the spread on the five-point scale.

    Takes canonical -2..2 preferences; returns arrays (item, n, counts per -2..2, opposite,
    disagreement, spread), in that order."""
    item = np.asarray(item)
    pref = np.asarray(preference, dtype=np.int64)
    ids, code = factorize(item)
    counts = np.bincount(code * 5 + pref + 2, minlength=len(ids) * 5).reshape(-1, 5)
    n = counts.sum(axis=1)
    camps = np.stack([counts[:, :2].sum(axis=1), counts[:, 2], counts[:, 3:].sum(axis=1)], axis=1)
    disputed = (camps > 0).sum(axis=1) > 1
    opposite = (camps[:, 0] > 0) & (camps[:, 2] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        disagreement = 1.0 - camps.max(axis=1) / n
    present = counts > 0
    spread = (4 - np.argmax(present[:, ::-1], axis=1)) - np.argmax(present, axis=1)
    sel = np.flatnonzero(disputed)
    order = np.lexsort((ids[sel], -spread[sel], -disagreement[sel], ~opposite[sel]))
    sel = sel[order]
    return {
        "item": ids[sel],
        "n": n[sel],
        "counts": counts[sel],
        "opposite": opposite[sel],
        "disagreement": disagreement[sel],
        "spread": spread[sel],
    }
