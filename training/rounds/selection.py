"""Which candidate pairs a round puts in front of physicians (pure: no Django, no models).

Candidates are pairs of generated responses to the same prompt, each with the previous reward
model's scores (or None when there is no reward model). The round's `n_pairs` are shared out
between four rules, in this order:

- anchor: pairs repeated verbatim from the previous batch, drawn at random, to measure drift;
- disagreement: candidates whose prompt is *similar* to a previous-batch prompt on which the reward
  model contradicted the physicians' majority (it scored the answer they rejected higher), largest
  contradiction first. Similar: the same text after lower-casing and collapsing whitespace, or a
  Jaccard overlap of at least SIMILAR_JACCARD between the two prompts' word sets;
- uncertainty: the remaining candidates whose two scores are closest, i.e. whose Bradley-Terry
  probability sigmoid(score_a - score_b) is nearest 0.5;
- random: drawn uniformly from what is left, so the round also gives an unbiased sample.

A rule that cannot fill its share (no reward model, no contradiction, too few anchors) passes
the remainder to random, and every pair records the rule that actually picked it.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

RULES = ("uncertainty", "disagreement", "random", "anchor")
DEFAULT_SHARES = {"uncertainty": 0.4, "disagreement": 0.2, "random": 0.3, "anchor": 0.1}
SIMILAR_JACCARD = 0.5
_WORD = re.compile(r"\w+")


def shares_validate(shares: dict | None) -> dict[str, float]:
    """Shares per rule, defaults filled in; they must be >= 0 and sum to 1 (within 1e-6)."""
    merged = {**DEFAULT_SHARES, **(shares or {})}
    unknown = set(merged) - set(RULES)
    if unknown:
        raise ValueError(f"Unknown selection rule(s): {', '.join(sorted(unknown))}; use {', '.join(RULES)}.")
    values = {k: float(merged[k]) for k in RULES}
    if any(v < 0 for v in values.values()) or abs(sum(values.values()) - 1.0) > 1e-6:
        raise ValueError(f"Selection shares must be >= 0 and sum to 1; got {values}.")
    return values


def rule_counts(shares: dict[str, float], n_pairs: int) -> dict[str, int]:
    """n_pairs split by share, largest remainder first (so the counts always sum to n_pairs)."""
    raw = {k: shares[k] * n_pairs for k in RULES}
    counts = {k: int(math.floor(v)) for k, v in raw.items()}
    for k in sorted(RULES, key=lambda k: -(raw[k] - counts[k]))[: n_pairs - sum(counts.values())]:
        counts[k] += 1
    return counts


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def prompt_similarity(a: str, b: str) -> float:
    """1.0 for the same prompt (normalised), else the Jaccard overlap of their word sets."""
    if normalise(a) == normalise(b):
        return 1.0
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


@dataclass(frozen=True)
class Candidate:
    key: object  # whatever identifies the pair for the caller
    prompt: str
    score_a: float | None = None
    score_b: float | None = None

    @property
    def scored(self) -> bool:
        return self.score_a is not None and self.score_b is not None

    @property
    def prob_b(self) -> float | None:
        """The reward model's Bradley-Terry probability that B is preferred."""
        return sigmoid(self.score_b - self.score_a) if self.scored else None


@dataclass(frozen=True)
class Contradiction:
    """A previous-batch prompt where the reward model sided against the physicians' majority."""

    prompt: str
    margin: float  # how far the reward model leaned the wrong way (score difference, > 0)


def contradictions(previous: Sequence[tuple[str, float, float, int | None]]) -> list[Contradiction]:
    """previous: (prompt, rm score of A, rm score of B, physicians' majority direction -1/0/+1 or
    None). A contradiction is a majority for one side with the reward model scoring the other higher."""
    out = []
    for prompt, score_a, score_b, majority in previous:
        if majority not in (-1, 1) or score_a is None or score_b is None:
            continue
        lean = (score_b - score_a) * -majority  # > 0: the model prefers the side physicians rejected
        if lean > 0:
            out.append(Contradiction(prompt=prompt, margin=lean))
    return out


def pairs_select(
    *,
    candidates: Sequence[Candidate],
    anchors: Sequence[object],
    n_pairs: int,
    shares: dict[str, float],
    previous_contradictions: Sequence[Contradiction] = (),
    seed: int = 0,
) -> list[tuple[object, str]]:
    """[(candidate key or anchor, rule)], at most n_pairs, following the module's rules."""
    rng = random.Random(seed)
    counts = rule_counts(shares, n_pairs)
    chosen: list[tuple[object, str]] = []
    carry = 0

    anchor_pool = list(anchors)
    rng.shuffle(anchor_pool)
    picked = anchor_pool[: counts["anchor"]]
    chosen += [(a, "anchor") for a in picked]
    carry += counts["anchor"] - len(picked)

    remaining = list(candidates)
    rng.shuffle(remaining)  # ties in the rankings below fall in random, not insertion, order

    def take(ranked: list[Candidate], k: int, rule: str) -> int:
        nonlocal remaining
        keys = {id(c) for c in ranked[:k]}
        chosen.extend((c.key, rule) for c in ranked[:k])
        remaining = [c for c in remaining if id(c) not in keys]
        return k - min(k, len(ranked))

    def contradiction_strength(c: Candidate) -> float:
        best = 0.0
        for prior in previous_contradictions:
            if prompt_similarity(c.prompt, prior.prompt) >= SIMILAR_JACCARD:
                best = max(best, prior.margin)
        return best

    eligible = [(contradiction_strength(c), c) for c in remaining if c.scored]
    eligible = [(s, c) for s, c in eligible if s > 0]
    eligible.sort(key=lambda sc: (-sc[0], abs(sc[1].prob_b - 0.5)))
    carry += take([c for _, c in eligible], counts["disagreement"], "disagreement")

    unsure = sorted((c for c in remaining if c.scored), key=lambda c: abs(c.prob_b - 0.5))
    carry += take(unsure, counts["uncertainty"], "uncertainty")

    take(list(remaining), counts["random"] + carry, "random")
    return chosen
