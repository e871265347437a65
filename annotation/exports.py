"""Judgments -> training data. Pure: no Django, no database; the service (export_services.py)
streams rows in and this module decides, splits and writes.

Votes are stored relative to the canonical pair (A, B) on the ordinal scale -2..2 (negative
favours A). A pair becomes at most one chosen/rejected triple, plus KTO rows.

Definitions (also written into every dataset card):

- direction of a vote: A (preference < 0), tie (0) or B (> 0).
- majority: the strict plurality among the three directions {A, tie, B}. When the tie direction
  wins the pair is a *tie*; when no direction has a strict plurality it is a *split*. With
  ties="drop" (default) both are dropped and counted; with ties="keep" both are emitted as ties
  in the KTO file (TRL's preference formats cannot hold a tie).
- unanimous: every vote has the same direction.
- min_agreement: the majority decision, kept only if at least `min_agreement` votes back it.
- adjudicated: only pairs with an adjudication. With adjudication_override (default on, every
  policy) the newest adjudication replaces the votes' decision.
- dawid_skene: EM over the three directions (Dawid & Skene 1979); each rater gets a 3x3
  confusion matrix, each pair a posterior; the decision is the posterior's argmax. The
  estimates are returned and saved in the manifest.
- margin (TRL RewardTrainer subtracts it from r_chosen - r_rejected): the mean over the pair's
  votes of the vote's strength oriented towards the chosen response (+2 "chosen much better",
  +1 better, 0 tie, -1/-2 for votes that preferred the rejected one), floored at 0, so it is
  in [0, 2]: unanimous "much better" gives 2, a 2-1 split of "better" votes gives 1/3.
  Dawid-Skene weighs each vote by the rater's estimated accuracy; an adjudication's margin is
  the strength the adjudicator gave.
- agreement: share of the pair's votes whose direction equals the decision's.
- veto: a response is vetoed when any rater marked it unsafe (a_unsafe / b_unsafe), any rater
  marked both unacceptable, the newest adjudication marked it unsafe, or any rater gave it one
  of `veto_flags` (default "unsafe_advice"). A vetoed response is NEVER `chosen`: a pair whose
  winner is vetoed is dropped ("chosen_vetoed"), never flipped. Vetoed responses always become
  KTO rows with label false, even when the pair yields no triple.
- split: grouped by prompt text (no prompt on both sides), seeded, exact ratio over distinct
  prompts. With rater_disjoint_test a seeded share of raters is held out: their votes decide
  only test pairs, everyone else's only train pairs, so no rater informs both sides.

Determinism: rows follow the input order (pair id), JSON keys are sorted, floats rounded to
6 digits, Parquet schema and writer options are fixed, and no timestamp enters a data file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

POLICIES = ("majority", "unanimous", "min_agreement", "adjudicated", "dawid_skene")
FORMATS = ("trl-jsonl", "trl-conversational", "parquet", "kto")
TIE_MODES = ("drop", "keep")
# File name suffix of each format; files are "<split>.<suffix>" (train.jsonl, test.kto.jsonl, ...).
FORMAT_SUFFIX = {
    "trl-jsonl": "jsonl",
    "trl-conversational": "conversational.jsonl",
    "parquet": "parquet",
    "kto": "kto.jsonl",
}
SPLITS = ("train", "test")

# Direction codes used by the vectorised estimators.
DIR_A, DIR_TIE, DIR_B = 0, 1, 2


class ExportParamsError(ValueError):
    """Bad export parameters; the message says which and what is allowed."""


@dataclass(frozen=True)
class ExportParams:
    policy: str = "majority"
    formats: tuple[str, ...] = ("trl-jsonl",)
    ties: str = "drop"
    min_agreement: int = 2
    min_votes: int = 1
    adjudication_override: bool = True
    min_rater_kappa: float | None = None
    veto_flags: tuple[str, ...] = ("unsafe_advice",)
    specialties: tuple[str, ...] = ()
    include_calibration: bool = False
    test_fraction: float = 0.1
    seed: int = 0
    rater_disjoint_test: bool = False
    test_rater_fraction: float = 0.34
    ds_max_iter: int = 100
    ds_tol: float = 1e-6

    @classmethod
    def from_dict(cls, raw: dict | None) -> ExportParams:
        """Validate loose input (API body, CLI options) into params; unknown keys are errors,
        so a typo never silently exports with a default."""
        raw = dict(raw or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ExportParamsError(f"Unknown export parameter(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")
        if "formats" in raw and isinstance(raw["formats"], str):
            raw["formats"] = [raw["formats"]]
        for key in ("formats", "veto_flags", "specialties"):
            if key in raw:
                if not isinstance(raw[key], (list, tuple)) or not all(isinstance(v, str) for v in raw[key]):
                    raise ExportParamsError(f"{key} must be a list of strings.")
                # Canonical order, so equal settings give equal params_sha256.
                order = (lambda v: (FORMATS.index(v) if v in FORMATS else len(FORMATS), v)) if key == "formats" else None
                raw[key] = tuple(sorted(set(raw[key]), key=order))
        p = cls(**raw)
        if p.policy not in POLICIES:
            raise ExportParamsError(f"Unknown policy {p.policy!r}. Choose one of: {', '.join(POLICIES)}.")
        if not p.formats:
            raise ExportParamsError(f"formats is empty. Choose from: {', '.join(FORMATS)}.")
        bad = [f for f in p.formats if f not in FORMATS]
        if bad:
            raise ExportParamsError(f"Unknown format(s) {', '.join(map(repr, bad))}. Choose from: {', '.join(FORMATS)}.")
        if p.ties not in TIE_MODES:
            raise ExportParamsError(f"ties must be one of: {', '.join(TIE_MODES)}.")
        for name in ("test_fraction", "test_rater_fraction"):
            value = getattr(p, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ExportParamsError(f"{name} must be a number in [0, 1); got {value!r}.")
        if p.rater_disjoint_test and not 0 < p.test_rater_fraction < 1:
            raise ExportParamsError("rater_disjoint_test needs 0 < test_rater_fraction < 1.")
        if p.rater_disjoint_test and p.test_fraction == 0:
            raise ExportParamsError("rater_disjoint_test needs a test side: set test_fraction > 0.")
        for name in ("min_agreement", "min_votes", "seed", "ds_max_iter"):
            value = getattr(p, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
                raise ExportParamsError(f"{name} must be a positive integer; got {value!r}.")
        if p.min_rater_kappa is not None and (isinstance(p.min_rater_kappa, bool) or not isinstance(p.min_rater_kappa, (int, float))
                                              or not -1 <= p.min_rater_kappa <= 1):
            raise ExportParamsError("min_rater_kappa must be null or a number in [-1, 1].")
        for name in ("adjudication_override", "include_calibration", "rater_disjoint_test"):
            if not isinstance(getattr(p, name), bool):
                raise ExportParamsError(f"{name} must be true or false.")
        return p

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("formats", "veto_flags", "specialties"):
            d[key] = list(d[key])
        return d

    def sha256(self) -> str:
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()

    @property
    def needs_vote_prepass(self) -> bool:
        """Whether the votes must be read once before writing (kappa filter, Dawid-Skene)."""
        return self.policy == "dawid_skene" or self.min_rater_kappa is not None


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


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
    veto_a = veto_b = False
    for v in all_votes:
        veto_a |= v.a_unsafe or v.both_unacceptable
        veto_b |= v.b_unsafe or v.both_unacceptable
        if veto_flags and v.flags:
            veto_a |= any(f in veto_flags for f in v.flags.get("a", ()))
            veto_b |= any(f in veto_flags for f in v.flags.get("b", ()))
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
    """The same summary from database aggregates (counts, sum, bool_or, non-empty flags as JSON text)."""
    flag_dicts = [json.loads(f) for f in flags_json] if flags_json else []
    veto_a = bool(any_a_unsafe or any_both)
    veto_b = bool(any_b_unsafe or any_both)
    if veto_flags:
        for fl in flag_dicts:
            veto_a |= any(f in veto_flags for f in fl.get("a", ()))
            veto_b |= any(f in veto_flags for f in fl.get("b", ()))
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


@dataclass(frozen=True, slots=True)
class Decision:
    """What one pair yields. outcome: "a"/"b" (the chosen side), "tie", or None (dropped, see reason)."""

    outcome: str | None
    reason: str | None
    margin: float
    n_votes: int
    n_chosen: int
    n_rejected: int
    n_tie: int
    agreement: float
    source: str
    veto_a: bool
    veto_b: bool
    flags: str


def _plurality(n_a: int, n_tie: int, n_b: int) -> int | None:
    top = max(n_a, n_tie, n_b)
    if [n_a, n_tie, n_b].count(top) > 1:
        return None
    return DIR_A if n_a == top else (DIR_B if n_b == top else DIR_TIE)


def vote_margin(preferences: Iterable[int], chosen: str, weights: Iterable[float] | None = None) -> float:
    """Mean strength of the votes oriented towards `chosen` ("a" or "b"), floored at 0; see the module doc."""
    sign = -1 if chosen == "a" else 1
    prefs = list(preferences)
    if not prefs:
        return 0.0
    w = [1.0] * len(prefs) if weights is None else list(weights)
    total = sum(w)
    if total <= 0:
        return 0.0
    value = sum(sign * p * wi for p, wi in zip(prefs, w)) / total
    return round(min(max(value, 0.0), 2.0), 6)


def pair_decide(
    pair: PairVotes,
    params: ExportParams,
    *,
    votes: list[Vote] | None = None,
    posterior: np.ndarray | None = None,
    rater_weights: dict[int, float] | None = None,
) -> Decision:
    """Decide one pair under params.policy. `votes` are the votes allowed to decide (after rater
    filters; default all); `posterior` is the Dawid-Skene posterior over (A, tie, B)."""
    if pair.summary is not None and votes is None:
        summ = pair.summary
    else:
        all_votes = pair.votes
        votes = all_votes if votes is None else votes
        weights = None
        if params.policy == "dawid_skene":
            rw = rater_weights or {}
            weights = [rw.get(v.rater_id, 1.0) for v in votes]
        summ = votes_summarise(all_votes, votes, params.veto_flags, weights)
    adj = pair.adjudication
    veto_a = summ.veto_a or (adj is not None and adj.a_unsafe)
    veto_b = summ.veto_b or (adj is not None and adj.b_unsafe)
    if veto_a or veto_b:
        flags = ",".join(sorted({*summ.flag_tokens, *(["a:vetoed"] if veto_a else []), *(["b:vetoed"] if veto_b else [])}))
    else:
        flags = ",".join(summ.flag_tokens)
    counts = (summ.n_a, summ.n_tie, summ.n_b)
    n = summ.n_a + summ.n_tie + summ.n_b
    source = "votes"

    def done(outcome, reason, margin=0.0):
        if outcome == "a" or outcome == "b":
            chosen_dir = DIR_A if outcome == "a" else DIR_B
            n_chosen, n_rejected = counts[chosen_dir], counts[2 - chosen_dir]
            agree = n_chosen
        else:
            n_chosen, n_rejected = counts[DIR_A], counts[DIR_B]
            agree = counts[DIR_TIE] if outcome == "tie" else 0
        return Decision(outcome, reason, margin, n, n_chosen, n_rejected, counts[DIR_TIE],
                        round(agree / n, 6) if n else 0.0, source, veto_a, veto_b, flags)

    if pair.is_calibration and not params.include_calibration:
        return done(None, "calibration")
    policy = params.policy
    if policy == "adjudicated" and adj is None:
        return done(None, "not_adjudicated")
    if adj is not None and (params.adjudication_override or policy == "adjudicated"):
        source = "adjudication"
        winner = direction(adj.preference)
    else:
        if n == 0:
            return done(None, "no_votes")
        if n < params.min_votes:
            return done(None, "too_few_votes")
        if policy == "dawid_skene":
            source = "dawid_skene"
            if posterior is None:
                return done(None, "no_votes")
            winner = int(np.argmax(posterior))
        else:
            winner = _plurality(*counts)
            if policy == "unanimous" and max(counts) != n:
                return done(None, "not_unanimous")
            if winner is None:
                return done("tie", "split") if params.ties == "keep" else done(None, "split")
            if policy == "min_agreement" and counts[winner] < params.min_agreement:
                return done(None, "below_min_agreement")
    if winner == DIR_TIE:
        return done("tie", "tie") if params.ties == "keep" else done(None, "tie")
    side = "a" if winner == DIR_A else "b"
    if veto_a and veto_b:
        return done(None, "both_vetoed")
    if (side == "a" and veto_a) or (side == "b" and veto_b):
        return done(None, "chosen_vetoed")
    if source == "adjudication":
        margin = round(float(abs(adj.preference)), 6)
    else:
        # Mean strength towards the chosen side (see vote_margin), from the summary's sums.
        value = (-summ.pref_sum if side == "a" else summ.pref_sum) / summ.weight_sum if summ.weight_sum > 0 else 0.0
        margin = round(min(max(value, 0.0), 2.0), 6)
    return done(side, None, margin)


# --- rater quality -------------------------------------------------------------------------

def rater_kappas(pair_index: np.ndarray, rater_ids: np.ndarray, directions: np.ndarray) -> dict[int, float]:
    """Cohen's kappa of each rater against the leave-one-out consensus: for every vote, the
    strict plurality direction of the *other* votes on the same pair (votes whose others have
    no plurality are skipped). Inputs are parallel arrays, one entry per vote."""
    pair_index = np.asarray(pair_index)
    rater_ids = np.asarray(rater_ids)
    directions = np.asarray(directions, dtype=np.int64)
    if len(directions) == 0:
        return {}
    _, item = np.unique(pair_index, return_inverse=True)
    counts = np.zeros((item.max() + 1, 3), dtype=np.int64)
    np.add.at(counts, (item, directions), 1)
    others = counts[item].copy()
    others[np.arange(len(directions)), directions] -= 1
    top = others.max(axis=1)
    unique_top = (others == top[:, None]).sum(axis=1) == 1
    valid = unique_top & (top > 0)
    consensus = others.argmax(axis=1)
    raters, rater_idx = np.unique(rater_ids, return_inverse=True)
    conf = np.zeros((len(raters), 3, 3), dtype=np.float64)
    np.add.at(conf, (rater_idx[valid], directions[valid], consensus[valid]), 1)
    out = {}
    for r, mat in zip(raters.tolist(), conf):
        total = mat.sum()
        if total == 0:
            continue
        po = np.trace(mat) / total
        pe = float((mat.sum(axis=1) * mat.sum(axis=0)).sum()) / total**2
        out[int(r)] = round(float((po - pe) / (1 - pe)) if pe < 1 else 1.0, 6)
    return out


@dataclass
class DawidSkeneResult:
    pair_ids: np.ndarray  # sorted
    posteriors: np.ndarray  # (n_pairs, 3) over (A, tie, B)
    class_priors: list[float]
    confusion: dict[int, list[list[float]]]  # rater -> P(rater says column | truth is row)
    rater_accuracy: dict[int, float]
    iterations: int
    converged: bool

    def posterior_for(self, pair_id: int) -> np.ndarray | None:
        i = int(np.searchsorted(self.pair_ids, pair_id))
        if i < len(self.pair_ids) and self.pair_ids[i] == pair_id:
            return self.posteriors[i]
        return None

    def summary(self) -> dict:
        """What the manifest keeps: the estimates, not the per-pair posteriors."""
        return {
            "classes": ["A", "tie", "B"],
            "class_priors": self.class_priors,
            "confusion": {str(r): m for r, m in sorted(self.confusion.items())},
            "rater_accuracy": {str(r): a for r, a in sorted(self.rater_accuracy.items())},
            "iterations": self.iterations,
            "converged": self.converged,
        }


def dawid_skene(
    pair_ids: np.ndarray, rater_ids: np.ndarray, directions: np.ndarray, *,
    max_iter: int = 100, tol: float = 1e-6, smoothing: float = 0.01,
) -> DawidSkeneResult:
    """Dawid-Skene EM over the three directions, initialised from vote proportions.
    `smoothing` is a Dirichlet pseudo-count that keeps a rater with few votes from getting
    a confusion matrix of hard zeros (and the log from -inf)."""
    pair_ids = np.asarray(pair_ids, dtype=np.int64)
    rater_ids = np.asarray(rater_ids, dtype=np.int64)
    labels = np.asarray(directions, dtype=np.int64)
    k = 3
    items, item = np.unique(pair_ids, return_inverse=True)
    raters, rater = np.unique(rater_ids, return_inverse=True)
    n_items, n_raters = len(items), len(raters)
    if n_items == 0:
        return DawidSkeneResult(items, np.zeros((0, k)), [1 / 3] * 3, {}, {}, 0, True)
    post = np.zeros((n_items, k))
    np.add.at(post, (item, labels), 1.0)
    post /= post.sum(axis=1, keepdims=True)
    prev_ll = -np.inf
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):
        # M-step
        priors = (post.sum(axis=0) + smoothing) / (n_items + k * smoothing)
        conf = np.full((n_raters, k, k), smoothing)
        np.add.at(conf, (rater, slice(None), labels), post[item])
        conf /= conf.sum(axis=2, keepdims=True)
        # E-step
        log_post = np.tile(np.log(priors), (n_items, 1))
        np.add.at(log_post, item, np.log(conf[rater, :, labels]))
        peak = log_post.max(axis=1, keepdims=True)
        unnorm = np.exp(log_post - peak)
        norm = unnorm.sum(axis=1, keepdims=True)
        post = unnorm / norm
        ll = float((np.log(norm) + peak).sum())
        if abs(ll - prev_ll) < tol * max(1.0, abs(ll)):
            converged = True
            break
        prev_ll = ll
    accuracy = (conf[:, np.arange(k), np.arange(k)] * priors).sum(axis=1)
    return DawidSkeneResult(
        pair_ids=items,
        posteriors=post,
        class_priors=[round(float(p), 6) for p in priors],
        confusion={int(r): np.round(conf[i], 6).tolist() for i, r in enumerate(raters)},
        rater_accuracy={int(r): round(float(accuracy[i]), 6) for i, r in enumerate(raters)},
        iterations=iterations,
        converged=converged,
    )


# --- split ---------------------------------------------------------------------------------

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


# --- rows ----------------------------------------------------------------------------------

def triple_row(pair: PairVotes, decision: Decision) -> dict:
    """The standard TRL preference row plus provenance (shared by every preference format)."""
    chosen_a = decision.outcome == "a"
    return {
        "prompt": pair.prompt,
        "chosen": pair.response_a if chosen_a else pair.response_b,
        "rejected": pair.response_b if chosen_a else pair.response_a,
        "margin": decision.margin,
        "pair_id": pair.pair_id,
        "batch": pair.batch_id,
        "chosen_side": decision.outcome,
        "n_votes": decision.n_votes,
        "vote_split": {"chosen": decision.n_chosen, "rejected": decision.n_rejected, "tie": decision.n_tie},
        "agreement": decision.agreement,
        "flags": decision.flags,
        "source": decision.source,
    }


from json.encoder import encode_basestring as _json_str  # noqa: E402 - the C string escaper json uses

# The line in three decision-dependent pieces around the per-pair values (chosen text, pair id,
# prompt and rejected texts), so the fast path (triple_json_template) shares them with triple_json.
_TRIPLE_HEAD = '{"agreement":%r,"batch":%d,"chosen":'
_TRIPLE_MID = ',"chosen_side":%s,"flags":%s,"margin":%r,"n_votes":%d,"pair_id":'
_TRIPLE_PAIR = '%d,"prompt":%s,"rejected":%s'
_TRIPLE_TAIL = ',"source":%s,"vote_split":{"chosen":%d,"rejected":%d,"tie":%d}}'
_TRIPLE_JSON = _TRIPLE_HEAD + "%s" + _TRIPLE_MID + _TRIPLE_PAIR + _TRIPLE_TAIL


def triple_json(row: dict) -> str:
    """triple_row as one JSON line, byte-identical to json.dumps(sort_keys=True, ensure_ascii=False,
    compact separators) but ~3x faster: the export writes a million of these."""
    vs = row["vote_split"]
    return _TRIPLE_JSON % (
        float(row["agreement"]), row["batch"], _json_str(row["chosen"]), _json_str(row["chosen_side"]),
        _json_str(row["flags"]), float(row["margin"]), row["n_votes"], row["pair_id"], _json_str(row["prompt"]),
        _json_str(row["rejected"]), _json_str(row["source"]), vs["chosen"], vs["rejected"], vs["tie"])


def triple_json_template(decision: Decision, batch_id: int) -> str:
    """triple_json of any pair with this decision in `batch_id`, as a %-template of
    (chosen JSON string, pair id, prompt JSON string, rejected JSON string): the fast export
    renders a line with one % instead of building a row dict and escaping every text."""
    def lit(text: str) -> str:
        return text.replace("%", "%%")

    return (lit(_TRIPLE_HEAD % (float(decision.agreement), batch_id)) + "%s"
            + lit(_TRIPLE_MID % (_json_str(decision.outcome), _json_str(decision.flags), float(decision.margin),
                                 decision.n_votes))
            + _TRIPLE_PAIR
            + lit(_TRIPLE_TAIL % (_json_str(decision.source), decision.n_chosen, decision.n_rejected, decision.n_tie)))


def conversational_row(row: dict) -> dict:
    out = dict(row)
    out["prompt"] = [{"role": "user", "content": row["prompt"]}]
    out["chosen"] = [{"role": "assistant", "content": row["chosen"]}]
    out["rejected"] = [{"role": "assistant", "content": row["rejected"]}]
    return out


def kto_rows(pair: PairVotes, decision: Decision) -> list[dict]:
    """Unpaired rows. Vetoed responses are always label false (safety judgments are never
    thrown away); chosen -> true, rejected -> false; a kept tie -> true for each response no
    one vetoed (the raters found both equally acceptable)."""
    labels: dict[str, tuple[bool, str]] = {}
    if decision.reason == "calibration":
        return []
    if decision.outcome in ("a", "b"):
        other = "b" if decision.outcome == "a" else "a"
        labels[decision.outcome] = (True, "chosen")
        labels[other] = (False, "rejected")
    elif decision.outcome == "tie":
        labels["a"] = labels["b"] = (True, "tie")
    if decision.veto_a:
        labels["a"] = (False, "vetoed")
    if decision.veto_b:
        labels["b"] = (False, "vetoed")
    rows = []
    for side in ("a", "b"):
        if side in labels:
            label, why = labels[side]
            rows.append({
                "prompt": pair.prompt,
                "completion": pair.response_a if side == "a" else pair.response_b,
                "label": label,
                "pair_id": pair.pair_id,
                "batch": pair.batch_id,
                "response": side,
                "reason": why,
            })
    return rows


# --- writers -------------------------------------------------------------------------------

_dumps = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


class _JsonlFile:
    def __init__(self, path: str):
        self.path = path
        self.fh = open(path, "w", encoding="utf-8", newline="\n")
        self.rows = 0
        self._buf: list[str] = []

    def write(self, row: dict) -> None:
        self.write_line(_dumps(row))

    def write_line(self, line: str) -> None:
        self._buf.append(line)
        self.rows += 1
        if len(self._buf) >= 4096:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self.fh.write("\n".join(self._buf) + "\n")
            self._buf = []

    def close(self) -> None:
        self.flush()
        self.fh.close()


def parquet_schema():
    import pyarrow as pa

    return pa.schema([
        ("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string()), ("margin", pa.float64()),
        ("pair_id", pa.int64()), ("batch", pa.int64()), ("chosen_side", pa.string()), ("n_votes", pa.int32()),
        ("vote_split", pa.struct([("chosen", pa.int32()), ("rejected", pa.int32()), ("tie", pa.int32())])),
        ("agreement", pa.float64()), ("flags", pa.string()), ("source", pa.string()),
    ])


class _ParquetFile:
    BATCH_ROWS = 16_384

    def __init__(self, path: str):
        import pyarrow.parquet as pq

        self.path = path
        self.schema = parquet_schema()
        # Fixed options: same rows -> same bytes (no pandas metadata, no timestamps).
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd", compression_level=3,
                                       use_dictionary=True, write_statistics=True, version="2.6")
        self.rows = 0
        self._cols: dict[str, list] = {name: [] for name in self.schema.names}

    def write(self, row: dict) -> None:
        for name, col in self._cols.items():
            col.append(row[name])
        self.rows += 1
        if len(self._cols["prompt"]) >= self.BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self._cols["prompt"]:
            self.writer.write_table(pa.Table.from_pydict(self._cols, schema=self.schema))
            self._cols = {name: [] for name in self.schema.names}

    def close(self) -> None:
        self.flush()
        self.writer.close()


@dataclass
class ExportFile:
    name: str
    path: str
    rows: int
    sha256: str
    bytes: int
    format: str
    split: str

    def public(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "rows": self.rows, "bytes": self.bytes,
                "format": self.format, "split": self.split}


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ExportWriter:
    """Opens one file per (format, split) under out_dir and routes rows to them."""

    def __init__(self, out_dir: str, formats: tuple[str, ...], splits: tuple[str, ...]):
        self.out_dir = out_dir
        self.splits = splits
        self._files: dict[tuple[str, str], _JsonlFile | _ParquetFile] = {}
        for fmt in formats:
            for split in splits:
                path = os.path.join(out_dir, f"{split}.{FORMAT_SUFFIX[fmt]}")
                self._files[(fmt, split)] = _ParquetFile(path) if fmt == "parquet" else _JsonlFile(path)
        self.formats = formats

    def write_pair(self, pair: PairVotes, decision: Decision, split: str) -> None:
        formats = self.formats
        if decision.outcome in ("a", "b"):
            row = triple_row(pair, decision)
            if "trl-jsonl" in formats:
                self._files[("trl-jsonl", split)].write_line(triple_json(row))
            if "parquet" in formats:
                self._files[("parquet", split)].write(row)
            if "trl-conversational" in formats:
                self._files[("trl-conversational", split)].write(conversational_row(row))
        if "kto" in formats:
            for row in kto_rows(pair, decision):
                self._files[("kto", split)].write(row)

    def close(self) -> list[ExportFile]:
        out = []
        for (fmt, split), f in self._files.items():
            f.close()
            out.append(ExportFile(name=os.path.basename(f.path), path=f.path, rows=f.rows,
                                  sha256=file_sha256(f.path), bytes=os.path.getsize(f.path), format=fmt, split=split))
        return sorted(out, key=lambda e: e.name)


# --- the whole run -------------------------------------------------------------------------

@dataclass
class ExportResult:
    files: list[ExportFile]
    counts: dict
    dropped: dict[str, int]
    excluded_votes: dict[str, int]


def export_write(
    pairs: Iterable[PairVotes],
    params: ExportParams,
    out_dir: str,
    *,
    test_prompts: frozenset[int] = frozenset(),
    test_raters: frozenset[int] = frozenset(),
    excluded_raters: frozenset[int] = frozenset(),
    ds: DawidSkeneResult | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Decide and write every pair of `pairs` (in the order given) into out_dir.

    excluded_raters: votes that never decide (low kappa, other specialty); their vetoes still count.
    test_raters: with params.rater_disjoint_test, raters whose votes decide only test pairs."""
    splits = ("train", "test") if params.test_fraction > 0 else ("train",)
    writer = ExportWriter(out_dir, params.formats, splits)
    dropped: dict[str, int] = {}
    excluded = {"excluded_raters": 0, "rater_disjoint_split": 0}
    decided = {s: 0 for s in splits}
    ties = {s: 0 for s in splits}
    n_pairs = 0
    weights = ds.rater_accuracy if ds is not None else None
    disjoint = params.rater_disjoint_test
    try:
        for pair in pairs:
            n_pairs += 1
            split = "test" if pair.prompt_key in test_prompts else "train"
            votes = None  # all of them (or the pair's database summary)
            if excluded_raters or disjoint:
                if pair.summary is not None:
                    raise ValueError("rater filters need per-vote pairs, not database summaries")
                kept = []
                for v in pair.votes:
                    if v.rater_id in excluded_raters:
                        excluded["excluded_raters"] += 1
                    elif disjoint and (v.rater_id in test_raters) != (split == "test"):
                        excluded["rater_disjoint_split"] += 1
                    else:
                        kept.append(v)
                votes = kept
            posterior = ds.posterior_for(pair.pair_id) if ds is not None else None
            decision = pair_decide(pair, params, votes=votes, posterior=posterior, rater_weights=weights)
            if decision.outcome in ("a", "b"):
                decided[split] += 1
            else:
                dropped[decision.reason] = dropped.get(decision.reason, 0) + 1
                if decision.outcome == "tie":
                    ties[split] += 1
            writer.write_pair(pair, decision, split)
            if progress is not None and n_pairs % 10_000 == 0:
                progress(n_pairs)
    finally:
        files = writer.close()
    if progress is not None:
        progress(n_pairs)
    counts = {
        "pairs": n_pairs,
        "triples": decided,
        "ties_kept": ties if params.ties == "keep" else {s: 0 for s in splits},
        "files": {f.name: f.rows for f in files},
    }
    return ExportResult(files=files, counts=counts, dropped=dict(sorted(dropped.items())), excluded_votes=excluded)


# Row layout of export_write_trl_jsonl: these leading columns, then the decision key.
FAST_ROW_COLUMNS = ("pair_id", "prompt", "response_a", "response_b")
FAST_KEY_COLUMNS = ("is_calibration", "n_a", "n_tie", "n_b", "preference_sum", "veto_a", "veto_b", "flags_json",
                    "adj_preference", "adj_a_unsafe", "adj_b_unsafe")
# Distinct decision keys held at once; beyond it the memo starts over (memory stays flat on odd data).
_FAST_MEMO_MAX = 100_000


class _HashingWriter:
    """Writes byte blocks to files and hashes them on a thread of its own: file writes and
    SHA-256 of large blocks release the GIL, so both overlap the formatting of the next chunk
    (and the file is never read back for its checksum)."""

    def __init__(self, paths: dict[str, str]):
        import queue
        import threading

        self._handles = {s: open(p, "wb") for s, p in paths.items()}
        self._hashes = {s: hashlib.sha256() for s in paths}
        self._queue: queue.Queue = queue.Queue(maxsize=8)  # bounded: memory stays flat
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="export-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._handles[item[0]].write(item[1])
                    self._hashes[item[0]].update(item[1])
                except BaseException as exc:  # raised in the caller's thread by write/close
                    self._error = exc

    def write(self, split: str, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((split, data))

    def close(self) -> dict[str, str]:
        """Wait for every block; close the files; the SHA-256 of each."""
        self._queue.put(None)
        self._thread.join()
        for fh in self._handles.values():
            fh.close()
        if self._error is not None:
            raise self._error
        return {s: h.hexdigest() for s, h in self._hashes.items()}


def decision_from_key(key: tuple, params: ExportParams, batch_id: int) -> Decision:
    """pair_decide on a pair described only by its decision key (FAST_KEY_COLUMNS): the
    database summary of its votes, its adjudication and whether it is a calibration item.
    veto_a/veto_b already include both_unacceptable; flags_json is a JSON array of the non-empty
    flags objects (or None)."""
    calib, n_a, n_tie, n_b, pref_sum, veto_a, veto_b, flags, adj_pref, adj_a, adj_b = key
    flags_json = [json.dumps(f) for f in json.loads(flags)] if flags else None
    summary = summary_from_aggregates(n_a or 0, n_tie or 0, n_b or 0, pref_sum, veto_a, veto_b, False, flags_json,
                                      params.veto_flags)
    adjudication = AdjudicationVote(adj_pref, adj_a, adj_b) if adj_pref is not None else None
    pair = PairVotes(0, batch_id, 0, "", "", "", [], adjudication, bool(calib), summary)
    return pair_decide(pair, params)


def export_write_trl_jsonl(
    chunks: Iterable[list[tuple]],
    params: ExportParams,
    out_dir: str,
    *,
    batch_id: int,
    test_pairs: frozenset[int] = frozenset(),
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """export_write for formats == ("trl-jsonl",) with database-summarised votes, byte for byte,
    at a fraction of the cost per pair: the decision is a function of a handful of aggregates,
    so it is made once per distinct key (pair_decide itself, memoised) and kept as a line
    template (triple_json_template) that takes the escaped texts with one %; each chunk is
    joined once, then written and hashed by a thread (no second read for the SHA-256).

    chunks: lists of rows in pair id order, each FAST_ROW_COLUMNS + FAST_KEY_COLUMNS.
    test_pairs: ids of the pairs on the test side (those whose prompt key is in the
    split_test_prompts set that export_write would be given)."""
    if params.formats != ("trl-jsonl",) or params.needs_vote_prepass or params.rater_disjoint_test:
        raise ValueError("export_write_trl_jsonl handles trl-jsonl alone, without rater filters or Dawid-Skene")
    splits = ("train", "test") if params.test_fraction > 0 else ("train",)
    paths = {s: os.path.join(out_dir, f"{s}.{FORMAT_SUFFIX['trl-jsonl']}") for s in splits}
    sink = _HashingWriter(paths)
    rows = dict.fromkeys(splits, 0)
    nbytes = dict.fromkeys(splits, 0)
    # memo entry: [template or None, chosen column, rejected column, train count, test count, decision]
    memo: dict[tuple, list] = {}
    retired: list[list] = []
    esc = _json_str
    n_pairs = 0
    try:
        for chunk in chunks:
            lines = {s: [] for s in splits}
            train, test = lines["train"], lines.get("test")
            for row in chunk:
                key = row[4:]
                e = memo.get(key)
                if e is None:
                    if len(memo) >= _FAST_MEMO_MAX:
                        retired.extend(memo.values())
                        memo.clear()
                    d = decision_from_key(key, params, batch_id)
                    is_triple = d.outcome in ("a", "b")
                    e = memo[key] = [triple_json_template(d, batch_id) if is_triple else None,
                                     2 if d.outcome == "a" else 3, 3 if d.outcome == "a" else 2, 0, 0, d]
                if row[0] in test_pairs:
                    e[4] += 1
                    out = test
                else:
                    e[3] += 1
                    out = train
                if e[0] is not None:
                    out.append(e[0] % (esc(row[e[1]]), row[0], esc(row[1]), esc(row[e[2]])))
            for s in splits:
                if lines[s]:
                    data = ("\n".join(lines[s]) + "\n").encode()
                    sink.write(s, data)
                    rows[s] += len(lines[s])
                    nbytes[s] += len(data)
            before, n_pairs = n_pairs, n_pairs + len(chunk)
            if progress is not None:
                for done in range((before // 10_000 + 1) * 10_000, n_pairs + 1, 10_000):
                    progress(done)
    finally:
        sha256 = sink.close()
        if hasattr(chunks, "close"):  # a database stream: stop its reader now, not at garbage collection
            chunks.close()
    if progress is not None:
        progress(n_pairs)
    decided = dict.fromkeys(splits, 0)
    ties = dict.fromkeys(splits, 0)
    dropped: dict[str, int] = {}
    for _, _, _, n_train, n_test, d in [*retired, *memo.values()]:
        for s, n in (("train", n_train), ("test", n_test)):
            if not n:
                continue
            if d.outcome in ("a", "b"):
                decided[s] += n
            else:
                dropped[d.reason] = dropped.get(d.reason, 0) + n
                if d.outcome == "tie":
                    ties[s] += n
    files = sorted((ExportFile(name=os.path.basename(paths[s]), path=paths[s], rows=rows[s], sha256=sha256[s],
                               bytes=nbytes[s], format="trl-jsonl", split=s) for s in splits), key=lambda f: f.name)
    counts = {
        "pairs": n_pairs,
        "triples": decided,
        "ties_kept": ties if params.ties == "keep" else dict.fromkeys(splits, 0),
        "files": {f.name: f.rows for f in files},
    }
    return ExportResult(files=files, counts=counts, dropped=dict(sorted(dropped.items())),
                        excluded_votes={"excluded_raters": 0, "rater_disjoint_split": 0})


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


def dataset_card(*, manifest: dict) -> str:
    """The Markdown dataset card (README.md) of one export."""
    p = manifest["params"]
    lines = [
        f"# ClinPref export: batch {manifest['batch']['name']} v{manifest['version']}",
        "",
        "Physician preference judgments of paired model completions of clinical prompts, aggregated into "
        "chosen/rejected triples for TRL (RewardTrainer, DPOTrainer) and unpaired rows for KTOTrainer.",
        "",
        "## Files",
        "",
        "| file | format | split | rows | sha256 |",
        "|---|---|---|---|---|",
        *[f"| {f['name']} | {f['format']} | {f['split']} | {f['rows']} | `{f['sha256']}` |" for f in manifest["files"]],
        "",
        "Load: `datasets.load_dataset(\"json\", data_files={\"train\": \"train.jsonl\", \"test\": \"test.jsonl\"})` "
        "or `load_dataset(\"parquet\", data_files=...)`.",
        "",
        "## Aggregation",
        "",
        f"- policy: **{p['policy']}**; ties: {p['ties']}; min votes: {p['min_votes']}; "
        f"adjudication override: {p['adjudication_override']}"
        + (f"; min agreement: {p['min_agreement']}" if p["policy"] == "min_agreement" else ""),
        f"- rater filters: min kappa against consensus {p['min_rater_kappa']}; specialties {p['specialties'] or 'all'}",
        f"- veto flags: {', '.join(p['veto_flags']) or 'none'} (plus a_unsafe / b_unsafe / both_unacceptable, and adjudicators' unsafe marks)",
        f"- split: grouped by prompt, test fraction {p['test_fraction']}, seed {p['seed']}"
        + (f", rater-disjoint test side ({p['test_rater_fraction']} of raters held out)" if p["rater_disjoint_test"] else ""),
        "",
        "## Counts",
        "",
        "```json",
        json.dumps({"counts": manifest["counts"], "dropped": manifest["dropped"],
                    "excluded_votes": manifest["excluded_votes"]}, indent=2, sort_keys=True),
        "```",
        "",
        "## Columns",
        "",
        "- `prompt`, `chosen`, `rejected`: strings (standard) or chat messages (conversational flavour).",
        "- `margin`: mean vote strength towards `chosen` (+2 much better ... -2 much worse), floored at 0, in [0, 2]; "
        "Dawid-Skene weighs votes by rater accuracy; adjudicated pairs take the adjudicator's strength.",
        "- `pair_id`, `batch`, `chosen_side` (a/b in the canonical pair), `n_votes`, "
        "`vote_split` {chosen, rejected, tie}, `agreement` (share of votes backing the decision), "
        "`flags` (comma-separated `side:flag`, `side:vetoed`), `source` (votes/adjudication/dawid_skene).",
        "- KTO: `prompt`, `completion`, `label`, plus `pair_id`, `batch`, `response`, `reason` (chosen/rejected/vetoed/tie).",
        "",
        "## Caveats",
        "",
        "A vetoed (unsafe) response is never `chosen`. Preferences reflect the judging physicians "
        "of this batch; they are not clinical guidance.",
        "",
    ]
    return "\n".join(lines)
