"""Judgments -> training data. The core is pure (no Django, no database): services.py streams rows
in (and writes snapshots through Django's storage), apis.py + urls.py serve /api/exports/, and
these modules decide, split and write:

- params.py     ExportParams and the allowed policies / formats / tie modes
- votes.py      PairVotes, votes and their summaries, and the row streams that build them
- aggregate.py  pair_decide (policies, margins, vetoes), rater kappas, Dawid-Skene
- split.py      the seeded, prompt-grouped (and optionally rater-disjoint) split
- rows.py       the TRL preference row, its JSON line, KTO rows
- writers.py    files per (format, split) and export_write (the reference path)
- fast.py       export_write_trl_jsonl (trl-jsonl over database summaries, same bytes)
- card.py       the dataset card

Callers import the core from annotation.exports, never from its modules. services.py may import
annotation.agreement (figures for the manifest), labeling and the shared base.

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

from .aggregate import dawid_skene, pair_decide, rater_kappas, vote_margin
from .card import dataset_card
from .fast import export_write_trl_jsonl
from .params import FORMATS, POLICIES, TIE_MODES, ExportParams, ExportParamsError
from .rows import kto_rows, triple_json, triple_json_template, triple_row
from .split import split_test_prompts, split_test_raters
from .votes import (
    AdjudicationVote,
    PairVotes,
    Vote,
    direction,
    iter_pairs,
    iter_pairs_aggregated,
    iter_pairs_summarised,
    prompt_key_from_sha256,
    prompt_keys_from_sha256,
    summary_from_aggregates,
)
from .writers import ExportResult, export_write, file_sha256

__all__ = [
    "FORMATS", "POLICIES", "TIE_MODES",
    "AdjudicationVote", "ExportParams", "ExportParamsError", "ExportResult", "PairVotes", "Vote",
    "dataset_card", "dawid_skene", "direction", "export_write", "export_write_trl_jsonl", "file_sha256",
    "iter_pairs", "iter_pairs_aggregated", "iter_pairs_summarised", "kto_rows", "pair_decide",
    "prompt_key_from_sha256", "prompt_keys_from_sha256", "rater_kappas", "split_test_prompts", "split_test_raters",
    "summary_from_aggregates", "triple_json", "triple_json_template", "triple_row", "vote_margin",
]
