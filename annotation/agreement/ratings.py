"""Long-format ratings (item, rater, label) factorised and sorted once by `ratings_build`, the
scales of the preference levels, and the mappings from canonical -2..2 preferences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotation.rules import PREFERENCES

LEVELS = ("five", "three", "binary")
METRICS = ("nominal", "ordinal", "interval")
LEVEL_SCALES = {
    "five": (-2, -1, 0, 1, 2),
    "three": (-1, 0, 1),
    "binary": (-1, 1),
}
LEVEL_CATEGORY_NAMES = {
    "five": tuple(p.canonical_words for p in PREFERENCES),
    "three": ("A better", "Tie", "B better"),
    "binary": ("A better", "B better"),
}


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
