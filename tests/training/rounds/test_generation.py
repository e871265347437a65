"""Generating a round on CPU with tiny models: every response recorded with its model, checkpoint,
sampling settings and seed; the draft batch a normal batch; cancel and resume keep what was made."""

import pytest

from annotation.models import BatchState, Completion, Pair
from tests.conftest import client_for
from training.models import GeneratedResponse, Round, RoundPair, RoundStatus
from training.rounds import services, worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SMALL = {"responses_per_prompt": 2, "max_new_tokens": 6, "seed": 11}


def test_round_from_the_api_builds_a_draft_batch_with_recorded_provenance(trained, django_capture_on_commit_callbacks):
    admin, batch, pairs, _, rm, ppo = trained
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(admin).post("/api/rounds/", {"source_run": ppo.pk, **SMALL, "n_pairs": 10,
                                                           "prompts": ["Is chest pain after exercise dangerous?"]}, format="json")
    assert response.status_code == 201, response.content
    rnd = Round.objects.get(pk=response.json()["id"])
    assert rnd.status == RoundStatus.READY, rnd.error
    assert rnd.number == 2 and rnd.previous_batch_id == batch.pk and rnd.reward_run_id == rm.pk
    assert set(rnd.models_used) == {"new", "previous"}  # previous falls back to the reference base, sampled once
    assert rnd.models_used["new"]["name"] == f"PPO run {ppo.pk}"
    assert len(rnd.prompts) == 7  # six from the previous batch + one new

    responses = list(GeneratedResponse.objects.filter(round=rnd))
    assert len(responses) == rnd.responses_total == rnd.responses_done == 7 * 2 * 2
    for r in responses:
        assert r.model_name and r.seed == worker.response_seed(11, r.prompt_index, r.sample_index)
        assert r.sampling == {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 6, "engine": "transformers"}
        assert r.reward_score is not None
    assert {r.checkpoint for r in responses if r.role == "new"} == {ppo.artifact_path}
    assert "transformers" in rnd.engine

    new_batch = rnd.batch
    assert new_batch.state == BatchState.DRAFT and new_batch.specialty_id == batch.specialty_id
    round_pairs = list(RoundPair.objects.filter(round=rnd))
    assert len(round_pairs) == new_batch.pairs.count() > 0
    assert {rp.rule for rp in round_pairs} <= {"uncertainty", "disagreement", "random", "anchor"}
    assert any(rp.rule == "anchor" and rp.anchor_of.batch_id == batch.pk for rp in round_pairs)
    for rp in round_pairs:
        if rp.rule != "anchor":
            assert {rp.role_a, rp.role_b} == {"new", "previous"} and 0 < rp.rm_prob_b < 1
    # Completions of the new batch carry no model name: the pair is only text.
    assert set(Completion.objects.filter(pk__in=Pair.objects.filter(batch=new_batch).values("completion_a")).values_list("model_name", flat=True)) == {""}


def test_cancel_keeps_responses_and_resume_finishes_without_regenerating(trained, django_capture_on_commit_callbacks, monkeypatch):
    admin, _, _, _, _, ppo = trained
    calls = {"n": 0}
    real_record = services.response_record

    def record_then_cancel(**kwargs):
        real_record(**kwargs)
        calls["n"] += 1
        if calls["n"] == 5:  # an admin presses cancel while the fifth response is being stored
            Round.objects.filter(pk=kwargs["round_id"]).update(cancel_requested=True)

    monkeypatch.setattr(services, "response_record", record_then_cancel)
    monkeypatch.setattr(worker.CancelPoller, "__init__", lambda self, round_id, poll=0.0: (
        setattr(self, "round_id", round_id), setattr(self, "poll", 0.0), setattr(self, "_at", 0.0), setattr(self, "_cancelled", False))[0])
    with django_capture_on_commit_callbacks(execute=True):
        rnd = services.round_create(created_by=admin, source_run_id=ppo.pk, options=SMALL)
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.CANCELLED and rnd.batch_id is None
    kept = {r.pk: r.text for r in GeneratedResponse.objects.filter(round=rnd)}
    assert len(kept) == 5

    monkeypatch.setattr(services, "response_record", real_record)
    with django_capture_on_commit_callbacks(execute=True):
        services.round_resume(round_id=rnd.pk, actor=admin)
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.READY and rnd.attempts == 2
    after = {r.pk: r.text for r in GeneratedResponse.objects.filter(round=rnd)}
    assert len(after) == rnd.responses_total and all(after[k] == v for k, v in kept.items())


def test_a_dead_worker_is_taken_over_and_keeps_its_responses(trained, django_capture_on_commit_callbacks, settings):
    """A worker died mid-generation (heartbeat gone stale): the redelivered task claims the round and
    samples only what is missing - the same text the dead worker would have written (seeded)."""
    from datetime import timedelta

    from django.utils import timezone

    admin, _, _, _, _, ppo = trained
    with django_capture_on_commit_callbacks(execute=False):
        rnd = services.round_create(created_by=admin, source_run_id=ppo.pk, options=SMALL)
    # The first worker: claimed, wrote two responses, then died.
    first = services.round_claim(round_id=rnd.pk, task_id="first")
    spec = first.models_used["new"]
    for sample in (0, 1):
        services.response_record(round_id=rnd.pk, prompt_index=0, sample_index=sample, role="new", model=spec,
                                 sampling={"temperature": 0.7}, seed=worker.response_seed(11, 0, sample), text=f"kept {sample}")
    assert services.round_claim(round_id=rnd.pk, task_id="too-soon") is None  # live heartbeat: not ours
    Round.objects.filter(pk=rnd.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    done = worker.round_execute(round_id=rnd.pk, task_id="second")
    assert done.status == RoundStatus.READY and done.attempts == 2
    assert set(GeneratedResponse.objects.filter(round=rnd, prompt_index=0, role="new").values_list("text", flat=True)) == {"kept 0", "kept 1"}
    assert GeneratedResponse.objects.filter(round=rnd).count() == rnd.responses_total
