"""The round figures against independent computations: Bradley-Terry against a direct maximum
likelihood fit with scipy.optimize, the win rate against counting by hand."""

import numpy as np
import pytest
from scipy.optimize import minimize

from training.rounds import rating


def direct_mle(n_models, first, second, score):
    """Minimise the BT negative log-likelihood directly (theta_0 fixed at 0 for identifiability)."""
    first, second, score = map(np.asarray, (first, second, score))

    def nll(free):
        theta = np.concatenate([[0.0], free])
        d = theta[first] - theta[second]
        return -np.sum(score * -np.logaddexp(0, -d) + (1 - score) * -np.logaddexp(0, d))

    fit = minimize(nll, np.zeros(n_models - 1), method="BFGS", options={"gtol": 1e-10})
    theta = np.concatenate([[0.0], fit.x])
    return theta - theta.mean()


def test_bt_fit_matches_a_direct_scipy_mle_with_ties():
    rng = np.random.default_rng(4)
    true = np.array([0.0, 0.8, -0.5, 1.5])
    first = rng.integers(0, 4, 400)
    second = (first + rng.integers(1, 4, 400)) % 4
    p = 1 / (1 + np.exp(-(true[first] - true[second])))
    u = rng.random(400)
    score = np.where(u < 0.15, 0.5, (u < 0.15 + 0.85 * p).astype(float))
    ours = rating.bt_fit(4, first, second, score)
    np.testing.assert_allclose(ours, direct_mle(4, first, second, score), atol=1e-5)
    assert np.argmax(ours) == 3 and np.argmin(ours) == 2


def test_bt_two_models_has_the_closed_form():
    # 7 wins, 2 ties, 3 losses for model A: p = (7 + 1) / 12, theta_A - theta_B = logit(p).
    comparisons = [("A", "B", 1.0, i) for i in range(7)] + [("A", "B", 0.5, 10 + i) for i in range(2)] + \
                  [("B", "A", 1.0, 20 + i) for i in range(3)]
    first = [0 if c[0] == "A" else 1 for c in comparisons]
    second = [1 - f for f in first]
    theta = rating.bt_fit(2, first, second, [c[2] for c in comparisons])
    assert theta[0] - theta[1] == pytest.approx(np.log(8 / 4), abs=1e-8)
    ratings = {r.model: r for r in rating.bt_ratings(comparisons, n_boot=300, prior=0.0)}
    assert ratings["A"].rating - ratings["B"].rating == pytest.approx(rating.ELO_SCALE * np.log(2), abs=1e-5)
    assert ratings["A"].low < ratings["A"].rating < ratings["A"].high
    assert (ratings["A"].rating + ratings["B"].rating) / 2 == pytest.approx(1000.0)


def test_bt_stays_finite_when_one_model_wins_everything():
    comparisons = [("A", "B", 1.0, i) for i in range(5)]
    ratings = {r.model: r for r in rating.bt_ratings(comparisons, n_boot=100)}
    assert np.isfinite(ratings["A"].rating) and ratings["A"].rating > ratings["B"].rating


def test_win_rate_counts_ties_as_half_and_resamples_pairs():
    scores = [[1, 1, 0.5], [0, 0.5, 1], [1, 1, 1], [0, 0, 0.5]]
    wr = rating.win_rate(scores, n_boot=4000, seed=1)
    assert wr.rate == pytest.approx((1 + 1 + .5 + 0 + .5 + 1 + 1 + 1 + 1 + 0 + 0 + .5) / 12)
    assert (wr.wins, wr.ties, wr.losses, wr.pairs) == (6, 3, 3, 4)
    # Independent bootstrap: the interval's ends are means over resampled pairs, so they lie between
    # the worst and best pair means, and the interval holds the point estimate.
    means = [np.mean(s) for s in scores]
    assert min(means) <= wr.low < wr.rate < wr.high <= max(means)
    assert rating.win_rate([]).rate is None


def test_agreement_figures_by_hand():
    dirs = [[-1, -1, 1], [1, 1, 1], [0, -1, -1], [1, -1]]
    # majority: -1, +1, -1, none
    assert rating.model_vs_majority([-1, -1, -1, 1], dirs) == rating.Agreement(2 / 3, 3)
    # leave-one-out: pair 1: (-1 vs maj(-1,1)=None) skip x2, (1 vs -1) miss; pair 2: 3 hits;
    # pair 3: own 0 skipped, (-1 vs maj(0,-1)=None) skip x2; pair 4: one other each, (1 vs -1), (-1 vs 1) misses.
    assert rating.physician_vs_others(dirs) == rating.Agreement(3 / 6, 6)
    assert rating.pairwise_agreement([[1, 1, 0]]) == rating.Agreement(1 / 3, 3)
    assert rating.self_agreement([(1, 1), (-1, 0)]) == rating.Agreement(0.5, 2)
