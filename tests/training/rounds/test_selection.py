"""Each selection rule picks what it promises; shares are honoured and shortfalls go to random."""

import pytest

from training.rounds import selection
from training.rounds.selection import Candidate, Contradiction


def cands():
    # prompt i: score gap i (candidate 0 is the most uncertain)
    return [Candidate(key=i, prompt=f"question {i} about headache" if i < 5 else f"unrelated topic {i}", score_a=0.0, score_b=float(i))
            for i in range(10)]


def test_rule_counts_sum_to_n_pairs():
    counts = selection.rule_counts(selection.DEFAULT_SHARES, 7)
    assert sum(counts.values()) == 7 and counts["uncertainty"] == 3
    with pytest.raises(ValueError):
        selection.shares_validate({"uncertainty": 0.9})
    with pytest.raises(ValueError):
        selection.shares_validate({"novelty": 0.0})


def test_uncertainty_takes_the_pairs_nearest_one_half():
    chosen = selection.pairs_select(candidates=cands(), anchors=[], n_pairs=3, seed=0,
                                    shares={"uncertainty": 1.0, "disagreement": 0, "random": 0, "anchor": 0})
    assert chosen == [(0, "uncertainty"), (1, "uncertainty"), (2, "uncertainty")]


def test_disagreement_takes_prompts_similar_to_where_the_model_contradicted_physicians():
    previous = selection.contradictions([
        ("Question 7 about headache", 2.0, 0.0, +1),  # physicians: B; model: A by 2 -> contradiction
        ("unrelated topic 8", 0.0, 1.0, +1),          # model agrees -> not a contradiction
        ("unrelated topic 9", 0.0, 3.0, 0),           # tie majority -> nothing to contradict
    ])
    assert previous == [Contradiction(prompt="Question 7 about headache", margin=2.0)]
    assert selection.prompt_similarity("question 3 about headache", "Question 7 about headache") == pytest.approx(3 / 5)
    chosen = selection.pairs_select(candidates=cands(), anchors=[], n_pairs=5, previous_contradictions=previous, seed=0,
                                    shares={"uncertainty": 0, "disagreement": 1.0, "random": 0, "anchor": 0})
    picked = [k for k, rule in chosen if rule == "disagreement"]
    assert sorted(picked) == [0, 1, 2, 3, 4]  # the five prompts similar to the contradicted one
    # none similar enough -> the share falls to random, and the pairs say so
    far = selection.pairs_select(candidates=cands()[5:], anchors=[], n_pairs=2, previous_contradictions=previous, seed=0,
                                 shares={"uncertainty": 0, "disagreement": 1.0, "random": 0, "anchor": 0})
    assert [rule for _, rule in far] == ["random", "random"]


def test_random_share_is_uniform_over_what_is_left():
    counts = {i: 0 for i in range(10)}
    for seed in range(2000):
        for key, rule in selection.pairs_select(candidates=cands(), anchors=[], n_pairs=2, seed=seed,
                                                shares={"uncertainty": 0.5, "disagreement": 0, "random": 0.5, "anchor": 0}):
            if rule == "random":
                counts[key] += 1
    assert counts[0] == 0  # always taken by uncertainty first
    assert all(170 < counts[i] < 280 for i in range(1, 10)), counts  # 2000/9 = 222 each


def test_anchors_are_repeated_previous_pairs_and_shortfall_goes_to_random():
    chosen = selection.pairs_select(candidates=cands(), anchors=["p1", "p2"], n_pairs=10, seed=3,
                                    shares={"uncertainty": 0.0, "disagreement": 0.0, "random": 0.5, "anchor": 0.5})
    rules = [r for _, r in chosen]
    assert rules.count("anchor") == 2 and rules.count("random") == 8
    assert {k for k, r in chosen if r == "anchor"} == {"p1", "p2"}


def test_without_a_reward_model_everything_is_random():
    unscored = [Candidate(key=i, prompt="q") for i in range(6)]
    chosen = selection.pairs_select(candidates=unscored, anchors=[], n_pairs=4, seed=0, shares=selection.DEFAULT_SHARES)
    assert len(chosen) == 4 and {r for _, r in chosen} == {"random"}
