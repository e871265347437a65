"""The export decision has one definition (annotation.exports.pair_decide over a vote summary,
with the veto rule of annotation.rules); the fast trl-jsonl path pre-aggregates votes in SQL. Over
random votes, marks, flags, superseded revisions, calibration items and adjudications, both paths
must write the same rows: 3,000 random pairs per run (12 draws of 250)."""

import random

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation.exports import services as export_services
from annotation.models import Adjudication, Judgment, Pair
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

N_PAIRS = 250
FLAGS = ["hallucination", "unsafe_advice", "outdated_guidance"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def _randomise(batch, admin_user, *, seed: int, p_mark: float, p_flag: float, p_adjudicated: float) -> None:
    rng = random.Random(seed)
    judgments = list(Judgment.objects.filter(batch=batch))
    for j in judgments:
        j.preference = rng.choice([-2, -1, 0, 1, 2])
        j.a_unsafe, j.b_unsafe = rng.random() < p_mark, rng.random() < p_mark
        j.both_unacceptable = rng.random() < p_mark / 2
        j.flags = {side: sorted(rng.sample(FLAGS, rng.randint(1, 2))) for side in "ab" if rng.random() < p_flag}
        j.is_current = rng.random() > 0.05  # a few superseded revisions: they must not vote
    Judgment.objects.bulk_update(judgments, ["preference", "a_unsafe", "b_unsafe", "both_unacceptable", "flags", "is_current"],
                                 batch_size=500)
    pairs = list(Pair.objects.filter(batch=batch))
    for p in pairs:
        p.gold_preference = rng.choice([-1, 1]) if rng.random() < 0.05 else None
    Pair.objects.bulk_update(pairs, ["gold_preference"], batch_size=500)
    Adjudication.objects.filter(pair__batch=batch).delete()
    Adjudication.objects.bulk_create([
        Adjudication(pair=p, decided_by=admin_user, preference=rng.choice([-2, -1, 0, 1, 2]), note="n",
                     a_unsafe=rng.random() < 0.2, b_unsafe=rng.random() < 0.2)
        for p in pairs for _ in range(rng.choice([1, 1, 2])) if rng.random() < p_adjudicated
    ])


params_strategy = st.fixed_dictionaries({
    "policy": st.sampled_from(["majority", "unanimous", "min_agreement", "adjudicated"]),
    "ties": st.sampled_from(["drop", "keep"]),
    "veto_flags": st.sampled_from([[], ["unsafe_advice"], ["unsafe_advice", "hallucination"]]),
    "adjudication_override": st.booleans(),
    "include_calibration": st.booleans(),
    "min_votes": st.integers(1, 3),
    "min_agreement": st.integers(1, 3),
    "test_fraction": st.sampled_from([0, 0.3]),
})


def test_fast_and_general_paths_write_identical_rows(admin_user, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the fast path is PostgreSQL only")
    from annotation import exports

    batch, _, _ = factories.judged_batch(n_pairs=N_PAIRS, seed=7)
    fast_calls = []
    real_fast = exports.export_write_trl_jsonl
    monkeypatch.setattr(exports, "export_write_trl_jsonl", lambda *a, **kw: fast_calls.append(1) or real_fast(*a, **kw))

    @settings(max_examples=12, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(seed=st.integers(0, 2**31), p_mark=st.sampled_from([0.0, 0.05, 0.3]), p_flag=st.sampled_from([0.0, 0.2, 0.6]),
           p_adjudicated=st.sampled_from([0.0, 0.1, 0.5]), params=params_strategy)
    def check(seed, p_mark, p_flag, p_adjudicated, params):
        _randomise(batch, admin_user, seed=seed, p_mark=p_mark, p_flag=p_flag, p_adjudicated=p_adjudicated)
        params = {"formats": ["trl-jsonl"], **params}
        if params["policy"] != "min_agreement":
            params.pop("min_agreement")
        p = export_services.export_params_validate(params=params)
        snaps = {}
        for fast in (True, False):
            monkeypatch.setattr(export_services, "FAST_PATH", fast)
            snaps[fast] = export_services.export_create(batch=batch, params=params, created_by=admin_user,
                                                        include_agreement=False)
        # The decision itself: votes summarised by PostgreSQL (what the fast path and the general
        # path on PostgreSQL both read) against the votes one by one (the reference stream).
        decided = []
        for backend in ("orm", "postgresql"):
            with transaction.atomic():
                stream = export_services._pairs_stream(batch, per_vote=False, veto_flags=p.veto_flags, backend=backend)
                decided.append([(v.pair_id, exports.pair_decide(v, p)) for v in stream])
        assert len(decided[0]) == N_PAIRS and decided[0] == decided[1], params
        rows = lambda s: [(f["name"], f["sha256"], f["rows"]) for f in s.files if f["rows"] is not None]  # noqa: E731
        assert rows(snaps[True]) == rows(snaps[False]), params
        for key in ("counts", "dropped", "excluded_votes"):
            assert snaps[True].manifest[key] == snaps[False].manifest[key], (key, params)

    check()
    assert len(fast_calls) >= 6, "the fast path must really have run"
