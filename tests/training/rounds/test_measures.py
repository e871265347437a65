"""A labeled round's figures, from the physicians' judgments, checked against counting by hand;
and nothing about which model wrote an answer, the rule or the reward model's prediction reaches
a physician through the API or the pages."""

import json

import pytest
from django.test import Client

from annotation.labeling.services import batch_open
from annotation.models import BatchState
from tests import factories
from tests.conftest import client_for
from training.models import Round, RoundPair, RoundStatus
from training.rounds import rating, selectors

pytestmark = pytest.mark.django_db

NEW, OLD = "PPO run 991", "secret-reference-model-7b"


def labeled_round():
    """Previous batch (one anchor source) and a round with 3 head-to-head pairs and 1 anchor."""
    admin = factories.admin("lead")
    prev, prev_pairs, raters = factories.judged_batch(n_pairs=2, n_raters=3, seed=1, agreement=1.0, name="prev")
    batch = factories.BatchFactory(name="Round 2", specialty=prev.specialty, state=BatchState.DRAFT, raters_per_pair=4)
    rnd = Round.objects.create(number=2, status=RoundStatus.READY, previous_batch=prev, batch=batch, batch_name="Round 2",
                               models_used={"new": {"name": NEW}, "previous": {"name": OLD}}, options={}, prompts=[])
    pairs = [factories.make_pair(batch, f"Round question {i}?", f"first answer {i}", f"second answer {i}") for i in range(3)]
    # pair 0: new is A; physicians B, B, tie -> new scores 0, 0, .5; RM predicted A (wrong).
    # pair 1: new is B; physicians B, B, B -> new 1, 1, 1; RM predicted B (right).
    # pair 2: new is A; physicians A, A, B -> new 1, 1, 0; RM predicted A (right).
    spec = [(("new", "previous"), [2, 1, 0], 0.2), (("previous", "new"), [1, 2, 1], 0.9), (("new", "previous"), [-1, -2, 1], 0.3)]
    # Pairs 0 and 1 were drawn by the random rule, pair 2 by uncertainty (a close call on purpose).
    for pair, ((ra, rb), prefs, prob_b), rule in zip(pairs, spec, ["random", "random", "uncertainty"]):
        RoundPair.objects.create(round=rnd, pair=pair, rule=rule, role_a=ra, role_b=rb,
                                 model_a=NEW if ra == "new" else OLD, model_b=NEW if rb == "new" else OLD, rm_prob_b=prob_b)
        for rater, pref in zip(raters, prefs):
            factories.add_judgment(pair, rater, pref)
    # The anchor repeats prev_pairs[0]; the same raters judge it again: two keep their side, one flips.
    original = {j.rater_id: rating.direction(j.preference) for j in prev_pairs[0].judgments.filter(is_current=True)}
    anchor = factories.make_pair(batch, prev_pairs[0].prompt.text, prev_pairs[0].completion_a.text, prev_pairs[0].completion_b.text)
    RoundPair.objects.create(round=rnd, pair=anchor, rule="anchor", anchor_of=prev_pairs[0], rm_prob_b=0.6)
    for i, rater in enumerate(raters):
        d = original[rater.pk]
        factories.add_judgment(anchor, rater, (d if d else 1) if i < 2 else (-d if d else -1))
    return admin, rnd, raters, original


def test_round_figures_match_counting_by_hand():
    _, rnd, _, original = labeled_round()
    m = selectors.round_measures(rnd=rnd, n_boot=500)
    everything = m["head_to_head_all"]
    assert everything["rate"] == pytest.approx((0 + 0 + .5 + 1 + 1 + 1 + 1 + 1 + 0) / 9)
    assert (everything["wins"], everything["ties"], everything["losses"], everything["pairs"]) == (5, 1, 3, 3)
    # The headline win rate counts only the randomly drawn pairs (0 and 1): unbiased by selection.
    h2h = m["head_to_head"]
    assert h2h["rate"] == pytest.approx((0 + 0 + .5 + 1 + 1 + 1) / 6) and h2h["rule"] == "random"
    assert (h2h["wins"], h2h["ties"], h2h["losses"], h2h["pairs"]) == (3, 1, 2, 2)
    assert h2h["low"] <= h2h["rate"] <= h2h["high"]
    # majorities: B, B, A; RM predicted A, B, A -> 2 of 3.
    assert m["rm_vs_physicians"]["rate"] == pytest.approx(2 / 3) and m["rm_vs_physicians"]["n"] == 3
    assert m["rm_vs_physicians"]["ceiling"] == rating.physician_vs_others([[1, 1, 0], [1, 1, 1], [-1, -1, 1]]).rate
    expected_drift = sum(int((d if d else 1) == d) for d in list(original.values())[:2]) / 3 if all(original.values()) else None
    if expected_drift is not None:
        assert m["drift"]["rate"] == pytest.approx(expected_drift) and m["drift"]["n"] == 3
    assert m["rules"] == {"random": 2, "uncertainty": 1, "anchor": 1}

    ratings = {r["model"]: r for r in selectors.model_ratings(n_boot=200)}
    assert set(ratings) == {NEW, OLD} and ratings[NEW]["rating"] > ratings[OLD]["rating"]


def test_nothing_about_models_rules_or_predictions_reaches_a_physician():
    admin, rnd, raters, _ = labeled_round()
    doc = factories.physician("dr_fresh", rnd.batch.specialty)
    batch_open(batch_id=rnd.batch_id, actor=admin)
    secrets = (NEW, OLD, "uncertainty", "anchor", "rm_prob", "round_pair", "PPO run", "models_used")

    api = client_for(doc)
    seen = []
    while (r := api.get(f"/api/next/?batch={rnd.batch_id}")).status_code == 200:
        seen.append(r.content.decode())
        body = r.json()
        api.post(f"/api/assignments/{body['assignment_id']}/judgment/", {"preference": "1>2", "idempotency_key": f"k{body['assignment_id']}"},
                 format="json")
    assert len(seen) == 4
    seen.append(api.get("/api/judgments/").content.decode())
    seen.append(api.get(f"/api/batches/{rnd.batch_id}/").content.decode())
    assert api.get("/api/rounds/").status_code == 403 and api.get(f"/api/rounds/{rnd.pk}/").status_code == 403

    browser = Client()
    browser.force_login(raters[0])
    page = browser.get(f"/label/{rnd.batch_id}/")
    assert page.status_code == 200
    seen.append(page.content.decode())
    nxt = browser.get(f"/workspace/{rnd.batch_id}/next.json")
    seen.append(nxt.content.decode())
    assert browser.get("/dashboard/rounds/").status_code == 403
    for text in seen:
        for secret in secrets:
            assert secret not in text, (secret, text[:300])

    # The admin does see them.
    detail = client_for(admin).get(f"/api/rounds/{rnd.pk}/").json()
    assert detail["models_used"]["new"]["name"] == NEW and detail["measures"]["rules"]["uncertainty"] == 1
    assert json.dumps(detail)


def test_rounds_page_shows_each_round_with_its_figures_and_a_chart():
    admin, rnd, _, _ = labeled_round()
    browser = Client()
    browser.force_login(admin)
    html = browser.get("/dashboard/rounds/").content.decode()
    assert "Round 2" in html and 'class="chart rounds"' in html and NEW in html
    assert f"{5.5 / 9:.2f}" in html  # the win rate
    assert "Model ratings across rounds" in html
