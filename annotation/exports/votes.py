"""The input of an export: a pair with its votes (or a database summary of them) and its
adjudication, and the streams that build PairVotes from database rows in pair id order."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from annotation.rules import response_vetoed

# Direction codes used by the vectorised estimators.
DIR_A, DIR_TIE, DIR_B = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Vote:
    rater_id: int
    preference: int
    a_unsafe: bool = False
    b_unsafe: bool = False
    both_unacceptable: bool = False
    flags: dict | None = None  # {"a": [...], "b": [...]}


@dataclass(frozen=True, slots=True)
class AdjudicationVote:
    preference: int
    a_unsafe: bool = False
    b_unsafe: bool = False


@dataclass(slots=True)
class PairVotes:
    pair_id: int
    batch_id: int
    prompt_key: int  # groups the split: same prompt text -> same key (see prompt_key_from_sha256)
    prompt: str
    response_a: str
    response_b: str
    votes: list[Vote] = field(default_factory=list)
    adjudication: AdjudicationVote | None = None
    is_calibration: bool = False
    # Set by streams that aggregate votes in the database (votes then stays empty).
    summary: VoteSummary | None = None


@dataclass(frozen=True, slots=True)
class VoteSummary:
    """Everything a decision needs from the votes. Counts and sums cover the deciding votes;
    vetoes and flags cover every current vote of the pair."""

    n_a: int
    n_tie: int
    n_b: int
    pref_sum: float  # sum of preference x weight (weight 1 except under Dawid-Skene)
    weight_sum: float
    veto_a: bool
    veto_b: bool
    flag_tokens: tuple[str, ...]  # sorted "side:flag"


def _flag_tokens(flag_dicts: Iterable[dict]) -> tuple[str, ...]:
    tokens = set()
    for flags in flag_dicts:
        for side in ("a", "b"):
            tokens.update(f"{side}:{f}" for f in flags.get(side, ()))
    return tuple(sorted(tokens))


def votes_summarise(all_votes: list[Vote], votes: list[Vote], veto_flags: tuple[str, ...],
                    weights: list[float] | None = None) -> VoteSummary:
    veto_a = any(response_vetoed(marked_unsafe=v.a_unsafe, both_unacceptable=v.both_unacceptable,
                                 flags=(v.flags or {}).get("a", ()), veto_flags=veto_flags) for v in all_votes)
    veto_b = any(response_vetoed(marked_unsafe=v.b_unsafe, both_unacceptable=v.both_unacceptable,
                                 flags=(v.flags or {}).get("b", ()), veto_flags=veto_flags) for v in all_votes)
    n_a = n_b = 0
    for v in votes:
        if v.preference < 0:
            n_a += 1
        elif v.preference > 0:
            n_b += 1
    if weights is None:
        pref_sum, weight_sum = float(sum(v.preference for v in votes)), float(len(votes))
    else:
        pref_sum, weight_sum = sum(v.preference * w for v, w in zip(votes, weights)), float(sum(weights))
    tokens = _flag_tokens(v.flags for v in all_votes if v.flags)
    return VoteSummary(n_a, len(votes) - n_a - n_b, n_b, pref_sum, weight_sum, veto_a, veto_b, tokens)


def summary_from_aggregates(n_a: int, n_tie: int, n_b: int, pref_sum: int, any_a_unsafe: bool, any_b_unsafe: bool,
                            any_both: bool, flags_json: list[str] | None, veto_flags: tuple[str, ...]) -> VoteSummary:
    """The same summary from database aggregates (counts, sum, bool_or, non-empty flags as JSON
    text). The veto is an OR over raters, so the rule applied to the OR-ed marks and the union of
    the flags gives what it gives vote by vote (the property test checks it)."""
    flag_dicts = [json.loads(f) for f in flags_json] if flags_json else []
    veto_a = response_vetoed(marked_unsafe=bool(any_a_unsafe), both_unacceptable=bool(any_both),
                             flags=[f for fl in flag_dicts for f in fl.get("a", ())], veto_flags=veto_flags)
    veto_b = response_vetoed(marked_unsafe=bool(any_b_unsafe), both_unacceptable=bool(any_both),
                             flags=[f for fl in flag_dicts for f in fl.get("b", ())], veto_flags=veto_flags)
    return VoteSummary(n_a, n_tie, n_b, float(pref_sum or 0), float(n_a + n_tie + n_b), veto_a, veto_b,
                       _flag_tokens(flag_dicts))


def prompt_key_from_sha256(text_sha256: str) -> int:
    """A 63-bit int for a prompt's text hash: cheap to hold a million of in numpy. Re-hashed
    rather than sliced so any stored fingerprint spreads evenly over the split."""
    return int.from_bytes(hashlib.blake2b(text_sha256.encode(), digest_size=8).digest(), "big") >> 1


def prompt_keys_from_sha256(text_sha256s: Iterable[str]) -> list[int]:
    """prompt_key_from_sha256 of many hashes, without a Python call per hash (the export's
    split pre-pass hashes one per pair)."""
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    return [from_bytes(blake2b(sha.encode(), digest_size=8).digest(), "big") >> 1 for sha in text_sha256s]


def direction(preference: int) -> int:
    return DIR_A if preference < 0 else (DIR_B if preference > 0 else DIR_TIE)


def iter_pairs(
    pair_rows: Iterable[tuple], vote_rows: Iterable[tuple], adjudication_rows: Iterable[tuple] = (),
) -> Iterator[PairVotes]:
    """Merge-join three streams, each ordered by pair id, into PairVotes (constant memory).

    pair_rows: (pair_id, batch_id, prompt_sha256, prompt, response_a, response_b, gold_preference)
    vote_rows: (pair_id, rater_id, preference, a_unsafe, b_unsafe, both_unacceptable, flags)
    adjudication_rows: (pair_id, preference, a_unsafe, b_unsafe), newest first within a pair."""
    votes_it = iter(vote_rows)
    adj_it = iter(adjudication_rows)
    vote = next(votes_it, None)
    adj = next(adj_it, None)
    for pair_id, batch_id, sha, prompt, a_text, b_text, gold in pair_rows:
        votes = []
        while vote is not None and vote[0] < pair_id:  # votes of pairs outside the stream
            vote = next(votes_it, None)
        while vote is not None and vote[0] == pair_id:
            _, rater_id, pref, a_unsafe, b_unsafe, both, flags = vote
            votes.append(Vote(rater_id, pref, a_unsafe, b_unsafe, both, flags or None))
            vote = next(votes_it, None)
        adjudication = None
        while adj is not None and adj[0] < pair_id:
            adj = next(adj_it, None)
        if adj is not None and adj[0] == pair_id:
            adjudication = AdjudicationVote(adj[1], adj[2], adj[3])
            while adj is not None and adj[0] == pair_id:
                adj = next(adj_it, None)
        yield PairVotes(pair_id, batch_id, prompt_key_from_sha256(sha), prompt, a_text, b_text, votes,
                        adjudication, gold is not None)


def iter_pairs_aggregated(rows: Iterable[tuple]) -> Iterator[PairVotes]:
    """PairVotes from one row per pair with the votes already gathered into arrays (the
    PostgreSQL query of export_services): (pair_id, batch_id, prompt_sha256, prompt, response_a,
    response_b, gold_preference, rater_ids[], preferences[], a_unsafe[], b_unsafe[],
    both_unacceptable[], flags_json[] (NULL for no flags), adj_preference, adj_a_unsafe, adj_b_unsafe).
    Arrays are NULL for a pair without votes. Yields exactly what iter_pairs yields."""
    loads = json.loads
    for (pair_id, batch_id, sha, prompt, a_text, b_text, gold, raters, prefs, a_uns, b_uns, boths, flags,
         adj_pref, adj_a, adj_b) in rows:
        votes = []
        if raters:
            for rater_id, pref, au, bu, both, fl in zip(raters, prefs, a_uns, b_uns, boths, flags):
                votes.append(Vote(rater_id, pref, au, bu, both, (loads(fl) or None) if fl else None))
        adjudication = AdjudicationVote(adj_pref, adj_a, adj_b) if adj_pref is not None else None
        yield PairVotes(pair_id, batch_id, prompt_key_from_sha256(sha), prompt, a_text, b_text, votes,
                        adjudication, gold is not None)


def iter_pairs_summarised(rows: Iterable[tuple], veto_flags: tuple[str, ...]) -> Iterator[PairVotes]:
    """PairVotes carrying a VoteSummary built from database aggregates, one row per pair:
    (pair_id, batch_id, prompt_sha256, prompt, response_a, response_b, gold_preference,
    n_a, n_tie, n_b, preference_sum, any_a_unsafe, any_b_unsafe, any_both_unacceptable,
    non-empty flags as JSON text[] or NULL, adj_preference, adj_a_unsafe, adj_b_unsafe).
    For policies that need no per-vote data (no rater filter, no Dawid-Skene): it decides
    exactly as the per-vote path does, without building a Vote per judgment."""
    for (pair_id, batch_id, sha, prompt, a_text, b_text, gold, n_a, n_tie, n_b, pref_sum, any_a, any_b, any_both,
         flags, adj_pref, adj_a, adj_b) in rows:
        summary = summary_from_aggregates(n_a or 0, n_tie or 0, n_b or 0, pref_sum, any_a, any_b, any_both, flags,
                                          veto_flags)
        adjudication = AdjudicationVote(adj_pref, adj_a, adj_b) if adj_pref is not None else None
        yield PairVotes(pair_id, batch_id, prompt_key_from_sha256(sha), prompt, a_text, b_text, [], adjudication,
                        gold is not None, summary)
