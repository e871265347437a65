"""The agreement engine against the reference implementations, published worked examples and
the degenerate inputs a small batch produces. Pure numpy: no database."""

import json
import warnings
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from annotation.agreement import (
    LEVEL_SCALES,
    agreement_report,
    landis_koch,
    picked_first_from_preference,
    preference_at_level,
    ratings_build,
)

MISSING = -1


def ratings_from_matrix(matrix, categories=None, **kwargs):
    """items x raters matrix, MISSING where a rater did not rate the item."""
    matrix = np.asarray(matrix)
    items, raters = np.nonzero(matrix != MISSING)
    return ratings_build(item=items, rater=raters, label=matrix[items, raters], categories=categories, **kwargs)


def report_for(matrix, categories=None, **kwargs):
    build_kwargs = {k: kwargs.pop(k) for k in ("gold", "picked_first", "time_ms", "tie_value") if k in kwargs}
    return agreement_report(ratings_from_matrix(matrix, categories, **build_kwargs), **kwargs)


def close(ours, reference, tol=1e-9):
    if ours is None:
        return reference is None or not np.isfinite(reference)
    return reference is not None and np.isfinite(reference) and abs(ours - reference) < tol


def kripp_reference(matrix, metric, domain):
    data = np.where(np.asarray(matrix) == MISSING, np.nan, matrix).T.astype(float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return krippendorff.alpha(data, level_of_measurement=metric, value_domain=domain)
    except (ValueError, ZeroDivisionError):
        return None


# --- published worked examples ----------------------------------------------------------------------

# Fleiss (1971), "Measuring nominal scale agreement among many raters", Psychological Bulletin 76(5):
# 30 patients, 6 psychiatrists each, 5 diagnoses; published kappa 0.430 (R irr::kappam.fleiss 0.4302445).
FLEISS_1971_DIAGNOSES = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
    [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
    [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
    [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
    [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers x 12 units
# with missing values (None). Published: nominal 0.743, ordinal 0.815, interval 0.849.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def test_fleiss_1971_psychiatric_diagnoses():
    report = report_for(FLEISS_1971_DIAGNOSES)
    assert round(report["fleiss_kappa"], 3) == 0.430
    assert report["fleiss_kappa"] == pytest.approx(0.4302445, abs=1e-7)


@pytest.mark.parametrize("metric, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)])
def test_krippendorff_2011_reliability_data(metric, published):
    observers = np.array([[MISSING if v is None else v for v in row] for row in KRIPPENDORFF_2011])
    report = report_for(observers.T, categories=[1, 2, 3, 4, 5], metric=metric)
    assert round(report["krippendorff_alpha"], 3) == published
    assert report["n_items"] == 12 and report["n_raters"] == 4
    # Unit 12 has a single value: it cannot be paired and is left out of alpha.
    assert report["n_items_multiply_rated"] == 11


def test_cohen_1960_style_two_rater_table_matches_sklearn_all_weightings():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, 200)
    b = np.where(rng.random(200) < 0.6, a, rng.integers(0, 5, 200))
    report = report_for(np.stack([a, b], axis=1), categories=[0, 1, 2, 3, 4], metric="ordinal")
    (pair,) = report["cohen_kappa"]
    assert pair["n"] == 200
    assert pair["kappa"] == pytest.approx(cohen_kappa_score(a, b))
    assert pair["kappa_linear"] == pytest.approx(cohen_kappa_score(a, b, weights="linear"))
    assert pair["kappa_quadratic"] == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))


# --- randomised comparisons with the reference implementations ---------------------------------------


@st.composite
def reliability_matrices(draw, complete=False):
    n_items = draw(st.integers(1, 25))
    n_raters = draw(st.integers(2, 5))
    n_cats = draw(st.integers(2, 4))
    cells = st.integers(0, n_cats - 1) if complete else st.one_of(st.integers(0, n_cats - 1), st.just(MISSING))
    rows = draw(st.lists(st.lists(cells, min_size=n_raters, max_size=n_raters), min_size=n_items, max_size=n_items))
    return np.array(rows), list(range(n_cats))


FAST = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(reliability_matrices())
def test_pairwise_cohen_kappa_matches_sklearn(data):
    matrix, cats = data
    report = report_for(matrix, categories=cats, metric="ordinal")
    found = {(p["rater_a"], p["rater_b"]): p for p in report["cohen_kappa"]}
    for a in range(matrix.shape[1]):
        for b in range(a + 1, matrix.shape[1]):
            both = (matrix[:, a] != MISSING) & (matrix[:, b] != MISSING)
            if not both.any():
                assert (a, b) not in found
                continue
            pair = found[(a, b)]
            assert pair["n"] == both.sum()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for key, weights in (("kappa", None), ("kappa_linear", "linear"), ("kappa_quadratic", "quadratic")):
                    ref = cohen_kappa_score(matrix[both, a], matrix[both, b], labels=cats, weights=weights)
                    assert close(pair[key], ref), (key, pair[key], ref)


@FAST
@given(reliability_matrices(complete=True))
def test_fleiss_kappa_matches_statsmodels_on_complete_data(data):
    matrix, cats = data
    report = report_for(matrix, categories=cats)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        table, _ = aggregate_raters(matrix, n_cat=len(cats))
        ref = fleiss_kappa(table)
    assert close(report["fleiss_kappa"], ref)


@FAST
@given(reliability_matrices(), st.sampled_from(["nominal", "ordinal", "interval"]))
def test_krippendorff_alpha_matches_package_with_missing_data(data, metric):
    matrix, cats = data
    report = report_for(matrix, categories=cats, metric=metric)
    ref = kripp_reference(matrix, metric, cats)
    assert close(report["krippendorff_alpha"], ref, tol=1e-7)


@FAST
@given(reliability_matrices())
def test_report_is_strict_json_whatever_the_input(data):
    matrix, cats = data
    report = report_for(matrix, categories=cats, metric="ordinal", bootstrap=20, seed=1)
    json.dumps(report, allow_nan=False)


PANDALM = Path("/work/shared/data/pandalm/testset-v1.json")


@pytest.mark.skipif(not PANDALM.exists(), reason="PandaLM test set not available here")
def test_real_three_annotator_data_matches_references():
    # PandaLM test set (Apache-2.0): 999 response pairs, three annotators, 0 tie / 1 / 2.
    rows = json.loads(PANDALM.read_text())
    matrix = np.array([[r["annotator1"], r["annotator2"], r["annotator3"]] for r in rows])
    report = report_for(matrix, categories=[0, 1, 2])
    table, _ = aggregate_raters(matrix, n_cat=3)
    assert report["fleiss_kappa"] == pytest.approx(fleiss_kappa(table))
    assert report["krippendorff_alpha"] == pytest.approx(kripp_reference(matrix, "nominal", [0, 1, 2]))
    for pair in report["cohen_kappa"]:
        ref = cohen_kappa_score(matrix[:, pair["rater_a"]], matrix[:, pair["rater_b"]])
        assert pair["kappa"] == pytest.approx(ref)


# --- varying raters per item ---------------------------------------------------------------------


def test_fleiss_generalisation_averages_per_item_agreement_over_multiply_rated_items():
    matrix = np.array([[0, 0, MISSING], [0, 1, 1], [1, 1, 1], [1, MISSING, MISSING]])
    report = report_for(matrix, categories=[0, 1])
    # Items 0-2 have >= 2 ratings: P_i = 1, 1/3, 1; category shares (1+1/3+0)/3, (0+2/3+1)/3.
    p_bar = (1 + 1 / 3 + 1) / 3
    p0, p1 = (1 + 1 / 3) / 3, (2 / 3 + 1) / 3
    p_e = p0**2 + p1**2
    assert report["percent_agreement"] == pytest.approx(p_bar)
    assert report["fleiss_kappa"] == pytest.approx((p_bar - p_e) / (1 - p_e))
    assert report["n_items_multiply_rated"] == 3


# --- degenerate inputs -------------------------------------------------------------------------------


def test_one_rater_gives_none_and_a_note():
    report = report_for([[0], [1], [2]], categories=[0, 1, 2])
    assert report["fleiss_kappa"] is None and report["krippendorff_alpha"] is None
    assert report["percent_agreement"] is None and report["cohen_kappa"] == []
    assert any("one rater" in n for n in report["notes"])
    assert report["per_rater"][0]["kappa_vs_consensus"] is None


def test_no_overlap_between_raters():
    report = report_for([[0, MISSING], [MISSING, 1]], categories=[0, 1])
    assert report["cohen_kappa"] == [] and report["fleiss_kappa"] is None
    assert any("two or more raters" in n for n in report["notes"])


def test_every_rater_giving_one_label_makes_kappa_undefined():
    report = report_for([[1, 1, 1]] * 4, categories=[0, 1, 2], bootstrap=50)
    assert report["percent_agreement"] == 1.0
    assert report["fleiss_kappa"] is None and report["krippendorff_alpha"] is None
    assert all(p["kappa"] is None and p["kappa_ci"] is None for p in report["cohen_kappa"])
    assert report["fleiss_kappa_ci"] is None
    assert any("chance agreement is 1" in n for n in report["notes"])
    json.dumps(report, allow_nan=False)


def test_single_item_is_defined_when_labels_vary():
    report = report_for([[0, 1, 1]], categories=[0, 1])
    assert report["n_items"] == 1
    assert report["krippendorff_alpha"] is not None
    assert any("Only one item" in n for n in report["notes"])


def test_empty_input():
    report = agreement_report(ratings_build(item=[], rater=[], label=[], categories=[0, 1]))
    assert report["n_items"] == 0 and report["per_rater"] == [] and report["fleiss_kappa"] is None


def test_repeated_rating_keeps_the_last_one():
    ratings = ratings_build(item=[1, 1, 1], rater=["x", "y", "x"], label=[0, 1, 1])
    report = agreement_report(ratings)
    assert report["cohen_kappa"][0]["percent_agreement"] == 1.0
    assert any("repeated" in n for n in report["notes"])


def test_label_off_the_scale_is_rejected():
    with pytest.raises(ValueError, match="not on the scale"):
        ratings_build(item=[1], rater=[1], label=[7], categories=[0, 1])


# --- granularity, per-rater figures, bootstrap ----------------------------------------------------


def test_levels_map_preferences():
    pref = np.array([-2, -1, 0, 1, 2])
    assert preference_at_level(pref, "five")[0].tolist() == [-2, -1, 0, 1, 2]
    assert preference_at_level(pref, "three")[0].tolist() == [-1, -1, 0, 1, 1]
    values, keep = preference_at_level(pref, "binary")
    assert values[keep].tolist() == [-1, -1, 1, 1]
    with pytest.raises(ValueError):
        preference_at_level(pref, "seven")
    assert LEVEL_SCALES["three"] == (-1, 0, 1)


def test_picked_first_follows_display_order():
    pref = np.array([-1, -1, 1, 1, 0])
    shown = np.array([True, False, True, False, True])
    assert picked_first_from_preference(pref, shown).tolist() == [1, 0, 0, 1, -1]


def test_per_rater_figures():
    # Raters 0 and 1 always agree; rater 2 always says the opposite of them.
    items = np.repeat(np.arange(6), 3)
    raters = np.tile([10, 11, 12], 6)
    truth = np.array([-1, 1, -1, 1, -1, 0])
    labels = np.stack([truth, truth, -truth], axis=1).ravel()
    picked = np.stack([np.ones(6), np.ones(6), np.zeros(6)], axis=1).ravel().astype(int)
    picked[labels == 0] = -1
    times = np.tile([1000.0, 3000.0, np.nan], 6)
    times[0] = 5000.0
    ratings = ratings_build(
        item=items, rater=raters, label=labels, categories=[-1, 0, 1], gold={0: -1, 1: 1},
        picked_first=picked, time_ms=times, tie_value=0,
    )
    report = agreement_report(ratings)
    r0, r1, r2 = report["per_rater"]
    assert [r["rater"] for r in (r0, r1, r2)] == [10, 11, 12]
    # Rater 0's others (1 and 2) disagree on every non-tie item: no consensus there.
    assert r0["n_consensus"] == 1 and r0["n_no_consensus"] == 5
    # Rater 2 against the consensus of 0 and 1 (always the truth): the opposite label.
    assert r2["n_consensus"] == 6 and r2["kappa_vs_consensus"] < 0
    assert r0["gold_n"] == 2 and r0["gold_accuracy"] == 1.0 and r2["gold_accuracy"] == 0.0
    assert r0["tie_share"] == pytest.approx(1 / 6)
    assert r0["position_n"] == 5 and r0["position_first_share"] == 1.0
    assert r0["position_p_value"] == pytest.approx(2 * 0.5**5)
    assert r2["position_first_share"] == 0.0
    assert r0["median_time_ms"] == 1000.0 and r1["median_time_ms"] == 3000.0 and r2["median_time_ms"] is None


def test_leave_one_out_kappa_matches_sklearn_against_the_others_consensus():
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 3, 300)
    matrix = np.where(rng.random((300, 3)) < 0.7, truth[:, None], rng.integers(0, 3, (300, 3)))
    report = report_for(matrix, categories=[0, 1, 2])
    others = matrix[:, 1:]
    agree = others[:, 0] == others[:, 1]
    ref = cohen_kappa_score(matrix[agree, 0], others[agree, 0], labels=[0, 1, 2])
    assert report["per_rater"][0]["kappa_vs_consensus"] == pytest.approx(ref)
    assert report["per_rater"][0]["n_consensus"] == agree.sum()


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 400)
    matrix = np.where(rng.random((400, 3)) < 0.7, truth[:, None], rng.integers(0, 3, (400, 3)))
    first = report_for(matrix, categories=[0, 1, 2], metric="ordinal", bootstrap=300, seed=7)
    again = report_for(matrix, categories=[0, 1, 2], metric="ordinal", bootstrap=300, seed=7)
    assert first == again
    for key in ("fleiss_kappa", "krippendorff_alpha"):
        lo, hi = first[f"{key}_ci"]
        assert lo < first[key] < hi
    for pair in first["cohen_kappa"]:
        assert pair["kappa_ci"][0] < pair["kappa"] < pair["kappa_ci"][1]
        assert pair["kappa_quadratic_ci"][0] < pair["kappa_quadratic"] < pair["kappa_quadratic_ci"][1]
    assert first["bootstrap"]["resamples"] == 300


def test_pattern_bootstrap_agrees_with_naive_item_resampling():
    # The engine resamples item patterns multinomially; that must match resampling items directly.
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 150)
    matrix = np.where(rng.random((150, 3)) < 0.6, truth[:, None], rng.integers(0, 3, (150, 3)))
    ours = report_for(matrix, categories=[0, 1, 2], bootstrap=2000, seed=2)["fleiss_kappa_ci"]
    naive = []
    for _ in range(2000):
        sample = matrix[rng.integers(0, 150, 150)]
        naive.append(fleiss_kappa(aggregate_raters(sample, n_cat=3)[0]))
    lo, hi = np.percentile(naive, [2.5, 97.5])
    assert ours[0] == pytest.approx(lo, abs=0.02) and ours[1] == pytest.approx(hi, abs=0.02)


def test_landis_koch_wording():
    assert [landis_koch(v) for v in (-0.1, 0.1, 0.3, 0.5, 0.7, 0.9, None)] == [
        "poor", "slight", "fair", "moderate", "substantial", "almost perfect", None,
    ]


def test_disputed_items_rank_opposite_sides_first():
    from annotation.agreement import disputed_items

    item = [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
    pref = [-1, -1, -1, -1, -1, 0, -2, 1, 2, 2, 2]
    found = disputed_items(item, pref)
    assert found["item"].tolist() == [3, 2]
    assert found["opposite"].tolist() == [True, False]
    assert found["spread"].tolist() == [4, 1]
    assert found["counts"][0].tolist() == [1, 0, 0, 1, 1]


def test_vectorised_position_bias_test_equals_scipy_binomtest():
    from scipy.stats import binomtest

    from annotation.agreement.report import _binomial_test_half

    n = np.array([1, 2, 5, 10, 11, 40, 333, 1000] * 3)
    k = np.concatenate([np.zeros(8, int), n[:8] // 2, (n[:8] * 0.8).astype(int)])
    ours = _binomial_test_half(k, n)
    for ki, ni, p in zip(k, n, ours):
        assert p == pytest.approx(binomtest(int(ki), int(ni), 0.5).pvalue, rel=1e-9, abs=1e-300)
