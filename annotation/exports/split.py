"""The train/test split: seeded, grouped by prompt (no prompt on both sides), and optionally
rater-disjoint (a seeded share of raters held out for the test side)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def _seeded_subset(keys: Iterable[int], fraction: float, seed: int, salt: int) -> frozenset[int]:
    # An array as it is (fromiter would walk a million keys one numpy scalar at a time), and the
    # distinct keys by sorting: np.unique's hash table costs ~50 MB more at a million keys.
    keys = np.sort(np.asarray(keys, dtype=np.int64) if isinstance(keys, np.ndarray) else np.fromiter(keys, dtype=np.int64))
    if len(keys) > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    if fraction <= 0 or len(keys) == 0:
        return frozenset()
    n = int(round(fraction * len(keys)))
    # At least one when asked for a share and there are two or more: a 10% split of 5 prompts
    # should not silently give an empty test set.
    n = min(max(n, 1 if len(keys) > 1 else 0), len(keys) - 1)
    rng = np.random.default_rng([seed, salt])
    return frozenset(keys[rng.permutation(len(keys))[:n]].tolist())


def split_test_prompts(prompt_keys: Iterable[int], *, test_fraction: float, seed: int) -> frozenset[int]:
    """The prompt keys that go to the test side: round(test_fraction * distinct prompts), seeded."""
    return _seeded_subset(prompt_keys, test_fraction, seed, salt=1)


def split_test_raters(rater_ids: Iterable[int], *, fraction: float, seed: int) -> frozenset[int]:
    """The raters held out for the test side (rater-disjoint split)."""
    return _seeded_subset(rater_ids, fraction, seed, salt=2)
