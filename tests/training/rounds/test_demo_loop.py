"""The demo's two rounds on CPU from the dashboard: close round 1 (trains a reward model and a tiny
PPO policy), generate round 2 from that policy, label it with the simulated raters, close it, and
read the rounds page."""

import pytest
from django.test import Client

from annotation.demo.load import demo_load
from annotation.models import Batch, BatchState
from tests.training.conftest import FAST_PARAMS
from training.models import Round, RoundStatus, RunKind, RunStatus, TrainingRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_two_demo_rounds_from_the_dashboard(fast_training, django_capture_on_commit_callbacks, settings):
    demo_load()
    admin = Client()
    admin.force_login(Batch.objects.get(name="K-QA demo — Cardiology").created_by)  # the demo admin
    cardiology = Batch.objects.get(name="K-QA demo — Cardiology")

    with django_capture_on_commit_callbacks(execute=True):
        r = admin.post(f"/dashboard/batches/{cardiology.pk}/close/", {"confirm": "on", "force": "on", "override_reason": "demo"})
    assert r.status_code == 302
    ppo = TrainingRun.objects.get(export__batch=cardiology, kind=RunKind.PPO)
    assert ppo.status == RunStatus.SUCCEEDED, ppo.error + ppo.log_tail[-2000:]

    with django_capture_on_commit_callbacks(execute=True):
        r = admin.post("/dashboard/rounds/", {
            "source_run": ppo.pk, "use_previous_prompts": "on", "responses_per_prompt": 2, "temperature": 0.7, "top_p": 0.95,
            "max_new_tokens": 8, "seed": 0, "models": ["new", "previous"], "n_pairs": 16,
            "share_uncertainty": 0.4, "share_disagreement": 0.2, "share_random": 0.3, "share_anchor": 0.1})
    assert r.status_code == 302, r.content.decode()[:2000]
    rnd = Round.objects.get()
    assert rnd.status == RoundStatus.READY and rnd.is_demo, rnd.error

    r = admin.post(f"/dashboard/rounds/{rnd.pk}/simulate/")
    assert r.status_code == 302
    rnd.refresh_from_db()
    assert rnd.batch.state == BatchState.OPEN and rnd.batch.judgments.count() == 3 * rnd.batch.pairs.count()

    with django_capture_on_commit_callbacks(execute=True):
        admin.post(f"/dashboard/batches/{rnd.batch_id}/close/", {"confirm": "on", "force": "on", "override_reason": "demo"})
    # Round 2 trains onward: its reward model from round 1's, its policy from the policy round 2 sampled.
    reward2 = TrainingRun.objects.get(export__batch=rnd.batch, kind=RunKind.REWARD_MODEL)
    ppo2 = TrainingRun.objects.get(export__batch=rnd.batch, kind=RunKind.PPO)
    assert reward2.base_model == f"run:{rnd.reward_run_id}" and ppo2.base_model == f"run:{ppo.pk}"
    assert reward2.status == ppo2.status == RunStatus.SUCCEEDED, reward2.error + ppo2.error + ppo2.log_tail[-2000:]
    assert reward2.is_demo and ppo2.is_demo

    html = admin.get("/dashboard/rounds/").content.decode()
    assert "Round 2" in html and "DEMO" in html and "ceiling" in html
    from training.rounds.selectors import round_measures

    m = round_measures(rnd=rnd, n_boot=200)
    assert m["head_to_head_all"]["pairs"] > 0 and m["head_to_head_all"]["rate"] is not None
    assert 0 < m["head_to_head"]["pairs"] <= m["head_to_head_all"]["pairs"]
    assert m["rm_vs_physicians"]["n"] > 0 and m["rm_vs_physicians"]["ceiling"] is not None
    print("DEMO ROUND 2", m)

    # Round 3 from the onward-trained policy: "previous" is round 2's policy (fetched as a run), and the
    # reference (the policy's base, run:<round 1 policy>) is that same model, so it is sampled once.
    from training.rounds.services import round_create

    rnd3 = round_create(created_by=rnd.created_by, source_run_id=ppo2.pk,
                        options={"models": ["new", "previous", "reference"], "responses_per_prompt": 2})
    assert rnd3.number == 3 and rnd3.models_used["new"]["run"] == ppo2.pk
    assert rnd3.models_used["previous"]["run"] == ppo.pk and "reference" not in rnd3.models_used
    assert rnd3.reward_run_id == reward2.pk
