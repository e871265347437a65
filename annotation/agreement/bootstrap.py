"""Percentile confidence intervals, and the bootstrap of confusion matrices: a pair's (or a
rater's) kappa depends on its shared items only through their confusion cells, so resampling
them is a multinomial draw over those cells."""

from __future__ import annotations

import numpy as np

from .matrices import kappa_from_confusion

CI_MIN_DEFINED_SHARE = 0.5  # below this share of defined resamples, a percentile CI means little


def percentile_ci(samples: np.ndarray) -> list[float] | None:
    """95% percentile interval over the defined resamples; None when most are undefined."""
    finite = samples[np.isfinite(samples)]
    if samples.size == 0 or finite.size < CI_MIN_DEFINED_SHARE * samples.size:
        return None
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [float(lo), float(hi)]


def bootstrap_confusions(conf: np.ndarray, resamples: int, rng: np.random.Generator, weightings) -> dict:
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
                ci = percentile_ci(samples)
                if ci is not None:
                    out[w][row] = ci
    return out
