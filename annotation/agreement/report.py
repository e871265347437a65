"""The report: headline figures (percent agreement, Fleiss' kappa, Krippendorff's alpha), pairwise
Cohen's kappas and the per-rater table, as JSON-ready dicts with None (never NaN) where undefined."""

from __future__ import annotations

import math

import numpy as np

from .bootstrap import bootstrap_confusions, percentile_ci
from .matrices import alpha_from_coincidence, kappa_from_confusion
from .patterns import (
    coincidence_from_patterns,
    fleiss_from_patterns,
    item_counts,
    loo_confusions,
    pair_confusions,
    Patterns,
    item_patterns,
)
from .ratings import METRICS, Ratings

# Landis & Koch (1977): (lower bound, words) of each band above "poor" (below 0). The one definition.
LANDIS_KOCH_BANDS = ((0.0, "slight"), (0.20, "fair"), (0.40, "moderate"), (0.60, "substantial"), (0.80, "almost perfect"))


def landis_koch_legend() -> str:
    """The bands as one line of text, for the pages' legends."""
    parts = ["below 0 poor"] + [f"{lo:.2f}-{hi:.2f} {w}" for (lo, w), (hi, _) in zip(LANDIS_KOCH_BANDS, LANDIS_KOCH_BANDS[1:])]
    lo, words = LANDIS_KOCH_BANDS[-1]
    return ", ".join(parts + [f"above {lo:.2f} {words}"])


def landis_koch(value: float | None) -> str | None:
    """Landis & Koch (1977) wording for a kappa-like figure: below 0 poor (worse than chance),
    to 0.20 slight, 0.40 fair, 0.60 moderate, 0.80 substantial, above almost perfect. The one
    definition: the API, the command and the pages all use it."""
    if value is None:
        return None
    if value < 0:
        return "poor"
    for (_, words), (upper, _) in zip(LANDIS_KOCH_BANDS, LANDIS_KOCH_BANDS[1:]):
        if value <= upper:
            return words
    return LANDIS_KOCH_BANDS[-1][1]


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
    counts: np.ndarray, *, n_raters: int, categories, metric: str, bootstrap: int, rng, pats: Patterns | None = None
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
        pats = pats if pats is not None else item_patterns(counts)
        point = pats.freq[None, :].astype(float)
        pct, fleiss = fleiss_from_patterns(pats, point)
        coinc = coincidence_from_patterns(pats, point)
        alpha = alpha_from_coincidence(coinc, metric, values)
        for mt in metrics:
            alpha_by_metric[mt] = alpha_from_coincidence(coinc, mt, values if mt == "interval" else None)[0]
        if not math.isfinite(fleiss[0]):
            notes.append("Every rating on multiply-rated items has the same category: chance agreement is 1, so Fleiss' kappa is undefined.")
        if not math.isfinite(alpha[0]):
            notes.append("No variation among pairable values: Krippendorff's alpha is undefined.")
        if bootstrap:
            draws = rng.multinomial(n_items, pats.freq / pats.freq.sum(), size=bootstrap).astype(float)
            b_pct, b_fleiss = fleiss_from_patterns(pats, draws)
            b_alpha = alpha_from_coincidence(coincidence_from_patterns(pats, draws), metric, values)
            pct_ci, fleiss_ci, alpha_ci = percentile_ci(b_pct), percentile_ci(b_fleiss), percentile_ci(b_alpha)
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
    return _headline(item_counts(ratings), n_raters=ratings.n_raters, categories=ratings.categories, metric=metric,
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

    counts = item_counts(r)
    pats = item_patterns(counts)
    head = _headline(counts, n_raters=r.n_raters, categories=r.categories, metric=metric, bootstrap=bootstrap, rng=rng, pats=pats)
    notes += head.pop("notes")

    # Pairwise Cohen's kappa.
    ra, rb, conf = pair_confusions(r, counts) if k else (np.zeros(0, int), np.zeros(0, int), np.zeros((0, 0, 0)))
    pair_kappa = {w: kappa_from_confusion(conf, w) for w in weightings}
    pair_agree = np.trace(conf, axis1=1, axis2=2) / np.maximum(conf.sum(axis=(1, 2)), 1)
    pair_ci = bootstrap_confusions(conf, bootstrap, rng, weightings) if bootstrap and len(conf) else {}
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


def _per_rater(r: Ratings, pats: Patterns, *, bootstrap: int, rng, ra, rb, pair_kappa) -> list[dict]:
    n_r, k = r.n_raters, r.n_categories
    if n_r == 0:
        return []
    n_judged = np.bincount(r.rater, minlength=n_r)
    loo_conf, no_consensus = loo_confusions(r, pats) if k else (np.zeros((n_r, 0, 0)), np.zeros(n_r, int))
    loo_kappa = kappa_from_confusion(loo_conf) if k else np.full(n_r, np.nan)
    loo_ci = bootstrap_confusions(loo_conf, bootstrap, rng, (None,))[None] if bootstrap and k else None

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
