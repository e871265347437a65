"""The items raters disagree on, most disputed first (the adjudication queue)."""

from __future__ import annotations

import numpy as np

from .ratings import factorize


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
