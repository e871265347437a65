"""Statistics on stacks of confusion and coincidence matrices: Cohen's kappa (optionally
weighted) and Krippendorff's alpha for every matrix at once."""

from __future__ import annotations

import numpy as np

from .ratings import METRICS

EPS = 1e-12


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
    return np.where((n > 0) & (expected > EPS), kappa, np.nan)


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
    return np.where((n > 1) & (expected > EPS), alpha, np.nan)
