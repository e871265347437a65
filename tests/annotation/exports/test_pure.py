"""exports.py as a specification: aggregation, margin, vetoes, splits, writers. No database."""

import json

import numpy as np
import pytest

from annotation import exports as ex
from annotation.exports import AdjudicationVote, ExportParams, PairVotes, Vote


def pair(prefs, *, pair_id=1, prompt_key=1, adj=None, gold=None, extra=None) -> PairVotes:
    """extra: {vote index: Vote fields}."""
    extra = extra or {}
    votes = [Vote(rater_id=i + 1, preference=p, **extra.get(i, {})) for i, p in enumerate(prefs)]
    return PairVotes(pair_id, 7, prompt_key, f"prompt {prompt_key}", f"A{pair_id}", f"B{pair_id}", votes, adj, gold is not None)


def decide(prefs, policy="majority", **kw):
    params_kw = {k: kw.pop(k) for k in list(kw) if k in ExportParams.__dataclass_fields__}
    return ex.pair_decide(pair(prefs, **kw), ExportParams(policy=policy, **params_kw))


class TestMajority:
    def test_plurality_of_directions_wins(self):
        d = decide([-2, -1, 1])
        assert (d.outcome, d.n_chosen, d.n_rejected, d.agreement) == ("a", 2, 1, round(2 / 3, 6))

    def test_tie_and_split_are_dropped_by_default(self):
        assert decide([0, 0, 1]).reason == "tie" and decide([0, 0, 1]).outcome is None
        assert decide([-1, 1]).reason == "split" and decide([-1, 1]).outcome is None

    def test_ties_keep_turns_ties_and_splits_into_tie_decisions(self):
        assert decide([0, 0, 1], ties="keep").outcome == "tie"
        assert decide([-1, 0, 1], ties="keep").outcome == "tie"

    def test_min_votes(self):
        assert decide([1], min_votes=2).reason == "too_few_votes"
        assert decide([]).reason == "no_votes"


class TestOtherPolicies:
    def test_unanimous(self):
        assert decide([1, 2, 1], "unanimous").outcome == "b"
        assert decide([1, 2, -1], "unanimous").reason == "not_unanimous"

    def test_min_agreement_k_of_n(self):
        assert decide([1, 1, -1], "min_agreement", min_agreement=2).outcome == "b"
        assert decide([1, 1, -1, 0, -1, 1], "min_agreement", min_agreement=4).reason == "below_min_agreement"

    def test_adjudication_overrides_votes(self):
        d = decide([1, 1, 1], adj=AdjudicationVote(-2))
        assert (d.outcome, d.source, d.margin) == ("a", "adjudication", 2.0)
        assert decide([1, 1, 1], adj=AdjudicationVote(-2), adjudication_override=False).outcome == "b"

    def test_adjudicated_policy_keeps_only_adjudicated_pairs(self):
        assert decide([1, 1], "adjudicated").reason == "not_adjudicated"
        assert decide([1, 1], "adjudicated", adj=AdjudicationVote(1)).outcome == "b"

    def test_calibration_pairs_are_left_out_unless_asked(self):
        assert decide([1, 1], gold=1).reason == "calibration"
        assert decide([1, 1], gold=1, include_calibration=True).outcome == "b"


class TestMargin:
    @pytest.mark.parametrize("prefs,expected", [
        ([2, 2, 2], 2.0), ([1, 1, 1], 1.0), ([1, 1, -1], round(1 / 3, 6)), ([2, 1, -2], round(1 / 3, 6)),
        ([1, 1, -2], 0.0),  # floored: the dissent outweighs the backing
    ])
    def test_mean_oriented_strength_floored_at_zero(self, prefs, expected):
        d = decide(prefs)
        assert d.outcome == "b" and d.margin == expected

    def test_orientation_follows_the_chosen_side(self):
        assert decide([-2, -2, -1]).margin == round(5 / 3, 6)

    def test_weights(self):
        assert ex.vote_margin([2, -2], "b", [3.0, 1.0]) == 1.0


class TestVeto:
    @pytest.mark.parametrize("fields", [
        {0: {"b_unsafe": True}}, {2: {"both_unacceptable": True}}, {1: {"flags": {"b": ["unsafe_advice"]}}},
    ])
    def test_vetoed_response_is_never_chosen(self, fields):
        d = decide([2, 2, 2], extra=fields)
        assert d.outcome is None and d.reason in {"chosen_vetoed", "both_vetoed"}

    def test_veto_by_adjudication_even_when_it_prefers_it(self):
        d = decide([1, 1, 1], adj=AdjudicationVote(2, b_unsafe=True))
        assert d.outcome is None and d.reason == "chosen_vetoed"

    def test_vetoed_loser_keeps_the_triple_and_is_flagged(self):
        d = decide([1, 1, 1], extra={0: {"a_unsafe": True, "flags": {"a": ["hallucination"]}}})
        assert d.outcome == "b" and d.flags == "a:hallucination,a:vetoed"

    def test_veto_from_an_excluded_rater_still_counts(self):
        p = pair([1, 1, 1], extra={2: {"b_unsafe": True}})
        d = ex.pair_decide(p, ExportParams(), votes=p.votes[:2])
        assert d.outcome is None and d.reason == "chosen_vetoed"

    def test_kto_keeps_vetoes_when_no_triple(self):
        p = pair([0, 0, 0], extra={0: {"both_unacceptable": True}})
        d = ex.pair_decide(p, ExportParams())
        rows = ex.kto_rows(p, d)
        assert [(r["response"], r["label"], r["reason"]) for r in rows] == [("a", False, "vetoed"), ("b", False, "vetoed")]

    def test_kto_labels(self):
        p = pair([1, 1, -1], extra={0: {"a_unsafe": True}})
        rows = ex.kto_rows(p, ex.pair_decide(p, ExportParams()))
        assert [(r["completion"], r["label"], r["reason"]) for r in rows] == [("A1", False, "vetoed"), ("B1", True, "chosen")]
        tie = pair([0, 0, 1])
        assert [r["label"] for r in ex.kto_rows(tie, ex.pair_decide(tie, ExportParams(ties="keep")))] == [True, True]
        assert ex.kto_rows(tie, ex.pair_decide(tie, ExportParams())) == []


class TestRaterQuality:
    def test_kappa_against_leave_one_out_consensus(self):
        rng = np.random.default_rng(0)
        truth = rng.integers(0, 3, 200)
        pairs, raters, dirs = [], [], []
        for i, t in enumerate(truth):
            for r in range(4):
                label = t if r < 3 else rng.integers(0, 3)  # rater 3 answers at random
                pairs.append(i), raters.append(r), dirs.append(label)
        kappas = ex.rater_kappas(np.array(pairs), np.array(raters), np.array(dirs))
        assert min(kappas[0], kappas[1], kappas[2]) > 0.9 and abs(kappas[3]) < 0.2

    def test_dawid_skene_down_weights_the_unreliable_rater(self):
        rng = np.random.default_rng(1)
        truth = rng.integers(0, 3, 300)
        pairs, raters, dirs = [], [], []
        for i, t in enumerate(truth):
            for r, acc in enumerate([0.9, 0.85, 0.35, 0.35]):
                pairs.append(i), raters.append(r), dirs.append(t if rng.random() < acc else rng.integers(0, 3))
        res = ex.dawid_skene(np.array(pairs), np.array(raters), np.array(dirs))
        assert res.rater_accuracy[0] > res.rater_accuracy[2] + 0.3
        assert (res.posteriors.argmax(axis=1) == truth).mean() > 0.9
        assert set(res.summary()["confusion"]) == {"0", "1", "2", "3"}
        assert np.allclose(np.array(res.confusion[0]).sum(axis=1), 1.0)


class TestSplit:
    def test_exact_seeded_and_grouped(self):
        keys = list(range(100)) * 3  # each prompt thrice
        a = ex.split_test_prompts(keys, test_fraction=0.2, seed=3)
        assert len(a) == 20 and a == ex.split_test_prompts(reversed(keys), test_fraction=0.2, seed=3)
        assert a != ex.split_test_prompts(keys, test_fraction=0.2, seed=4)

    def test_small_sets_still_get_a_test_side_but_not_everything(self):
        assert len(ex.split_test_prompts([1, 2, 3], test_fraction=0.1, seed=0)) == 1
        assert ex.split_test_prompts([1, 2, 3], test_fraction=0, seed=0) == frozenset()


class TestParams:
    @pytest.mark.parametrize("raw,msg", [
        ({"policy": "vibes"}, "Unknown policy"), ({"formats": ["csv"]}, "Unknown format"),
        ({"test_fraction": 1.0}, "test_fraction"), ({"test_fraction": "0.1"}, "test_fraction"),
        ({"polcy": "majority"}, "Unknown export parameter"), ({"formats": []}, "formats is empty"),
    ])
    def test_bad_params_say_what_is_wrong(self, raw, msg):
        with pytest.raises(ex.ExportParamsError, match=msg):
            ExportParams.from_dict(raw)

    def test_canonical_hash_ignores_format_order(self):
        a = ExportParams.from_dict({"formats": ["kto", "trl-jsonl"]})
        b = ExportParams.from_dict({"formats": ["trl-jsonl", "kto", "kto"]})
        assert a == b and a.sha256() == b.sha256()


def test_iter_pairs_merges_streams_and_takes_the_newest_adjudication():
    sha = "ab" * 32
    pairs = [(1, 7, sha, "p", "a", "b", None), (2, 7, sha, "p", "a2", "b2", None), (3, 7, sha, "p", "a3", "b3", 1)]
    votes = [(1, 10, 1, False, False, False, {}), (1, 11, -1, False, True, False, {"b": ["x"]}), (3, 10, 0, False, False, False, {})]
    adjs = [(2, -2, False, False), (2, 1, False, False)]
    out = list(ex.iter_pairs(pairs, votes, adjs))
    assert [len(p.votes) for p in out] == [2, 0, 1]
    assert out[1].adjudication.preference == -2 and out[2].is_calibration
    assert out[0].votes[1].flags == {"b": ["x"]}


def test_writers_are_deterministic_and_shaped_for_trl(tmp_path):
    pairs = [pair([1, 2, 1], pair_id=i, prompt_key=i) for i in range(1, 6)] + [pair([0, 0, 0], pair_id=9, prompt_key=9)]
    params = ExportParams(formats=tuple(ex.FORMATS), ties="keep", test_fraction=0.4)
    test = ex.split_test_prompts([p.prompt_key for p in pairs], test_fraction=0.4, seed=0)
    shas = []
    for run in ("one", "two"):
        out = tmp_path / run
        out.mkdir()
        res = ex.export_write(iter(pairs), params, str(out), test_prompts=test)
        shas.append({f.name: f.sha256 for f in res.files})
    assert shas[0] == shas[1]
    assert set(shas[0]) == {f"{s}.{x}" for s in ("train", "test") for x in ("jsonl", "conversational.jsonl", "parquet", "kto.jsonl")}
    std = [json.loads(line) for line in (tmp_path / "one" / "train.jsonl").read_text().splitlines()]
    conv = [json.loads(line) for line in (tmp_path / "one" / "train.conversational.jsonl").read_text().splitlines()]
    assert std and all(r["chosen"].startswith("B") and r["vote_split"] == {"chosen": 3, "rejected": 0, "tie": 0} for r in std)
    assert conv[0]["prompt"] == [{"role": "user", "content": std[0]["prompt"]}]
    assert conv[0]["chosen"] == [{"role": "assistant", "content": std[0]["chosen"]}]
    assert res.counts["triples"]["train"] + res.counts["triples"]["test"] == 5 and res.dropped == {"tie": 1}


FAST_TEXT = 'say "hi" \\ back\nslash \t\x01\x1f 50% {0} %s é 🙂 \u2028'


def _fast_and_reference_inputs(n: int, seed: int, veto_flags: tuple[str, ...] = ("unsafe_advice",)):
    """The same random pairs as database-summarised PairVotes (reference) and as rows of
    export_write_trl_jsonl (fast): ties, splits, vetoes, flags, adjudications, calibration
    items, pairs without votes; and texts that need escaping."""
    import random

    rng = random.Random(seed)
    flag_choices = [None, None, None, '[{"a": ["hallucination"]}]', '[{"b": ["unsafe_advice"]}, {"a": ["50%_{x}"]}]']
    pairs, rows = [], []
    for pid in range(1, n + 1):
        prefs = [rng.choice([-2, -1, -1, 0, 1, 1, 2]) for _ in range(rng.choice([0, 1, 2, 3, 3, 3, 4]))]
        n_a, n_b = sum(p < 0 for p in prefs), sum(p > 0 for p in prefs)
        n_tie = len(prefs) - n_a - n_b
        # Without votes the database has no vetoes or flags (NULL aggregates).
        veto_a, veto_b = bool(prefs) and rng.random() < 0.08, bool(prefs) and rng.random() < 0.08
        flags = rng.choice(flag_choices) if prefs else None
        adj = ex.AdjudicationVote(rng.choice([-2, -1, 0, 1, 2]), rng.random() < 0.2, False) if rng.random() < 0.15 else None
        calib = rng.random() < 0.05
        texts = [f"prompt {pid % 7} {FAST_TEXT}", f"A{pid} {FAST_TEXT}", f"B{pid}"]
        agg = (n_a or None, n_tie or None, n_b or None, sum(prefs) if prefs else None)
        summary = ex.summary_from_aggregates(n_a, n_tie, n_b, agg[3], veto_a, veto_b, False,
                                             [json.dumps(f) for f in json.loads(flags)] if flags else None, veto_flags)
        pairs.append(PairVotes(pid, 7, pid % 7, *texts, [], adj, calib, summary))
        rows.append((pid, *texts, calib, *agg, veto_a if prefs else None, veto_b if prefs else None, flags,
                     adj.preference if adj else None, adj.a_unsafe if adj else None, adj.b_unsafe if adj else None))
    return pairs, rows


@pytest.mark.parametrize("raw", [
    {}, {"ties": "keep", "test_fraction": 0.3, "seed": 2}, {"policy": "unanimous", "ties": "keep"},
    {"policy": "min_agreement", "min_agreement": 3, "veto_flags": ()}, {"policy": "adjudicated", "test_fraction": 0.5},
    {"adjudication_override": False, "min_votes": 2, "include_calibration": True, "test_fraction": 0},
])
def test_fast_trl_jsonl_writer_matches_export_write_byte_for_byte(tmp_path, raw):
    params = ExportParams(**{"test_fraction": 0.25, **raw})
    pairs, rows = _fast_and_reference_inputs(300, seed=len(raw), veto_flags=params.veto_flags)
    test = ex.split_test_prompts([p.prompt_key for p in pairs], test_fraction=params.test_fraction, seed=params.seed)
    (tmp_path / "ref").mkdir()
    (tmp_path / "fast").mkdir()
    ref = ex.export_write(iter(pairs), params, str(tmp_path / "ref"), test_prompts=test)
    progress = []
    fast = ex.export_write_trl_jsonl([rows[:128], rows[128:129], rows[129:]], params, str(tmp_path / "fast"), batch_id=7,
                                     test_pairs=frozenset(p.pair_id for p in pairs if p.prompt_key in test),
                                     progress=progress.append)
    assert [(f.name, f.rows, f.sha256, f.bytes) for f in fast.files] == [(f.name, f.rows, f.sha256, f.bytes) for f in ref.files]
    for f in ref.files:
        assert (tmp_path / "fast" / f.name).read_bytes() == (tmp_path / "ref" / f.name).read_bytes()
    assert (fast.counts, fast.dropped, fast.excluded_votes) == (ref.counts, ref.dropped, ref.excluded_votes)
    assert sum(f.rows for f in ref.files) > 0 and progress == [300]


def test_fast_writer_memo_starts_over_without_changing_the_output(tmp_path, monkeypatch):
    params = ExportParams(ties="keep")
    pairs, rows = _fast_and_reference_inputs(80, seed=9)
    outs = []
    for limit in (100_000, 3):
        monkeypatch.setattr(ex.fast, "_FAST_MEMO_MAX", limit)
        out = tmp_path / str(limit)
        out.mkdir()
        res = ex.export_write_trl_jsonl([rows], params, str(out), batch_id=7)
        outs.append(((out / "train.jsonl").read_bytes(), res.counts, res.dropped))
    assert outs[0] == outs[1]


def test_triple_json_template_renders_triple_json():
    for prefs, extra in (([1, 2, 1], {}), ([-2, -1, 1], {0: {"flags": {"a": ["50%_{x}"]}, "b_unsafe": True}})):
        p = pair(prefs, extra=extra)
        p.prompt, p.response_a, p.response_b = FAST_TEXT, "A %d", 'B "q"'
        d = ex.pair_decide(p, ExportParams())
        chosen, rejected = (p.response_a, p.response_b) if d.outcome == "a" else (p.response_b, p.response_a)
        j = json.JSONEncoder(ensure_ascii=False).encode
        assert ex.triple_json_template(d, 7) % (j(chosen), p.pair_id, j(p.prompt), j(rejected)) == \
            ex.triple_json(ex.triple_row(p, d))


def test_prompt_keys_from_sha256_is_the_scalar_key_of_each():
    shas = [f"{i:064x}" for i in range(5)]
    assert ex.prompt_keys_from_sha256(shas) == [ex.prompt_key_from_sha256(s) for s in shas]
