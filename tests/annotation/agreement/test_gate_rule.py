"""The training gate at its edges: not enough pairs never passes (and says so), alpha's estimate or
the lower end of its interval must reach the threshold, every rater's kappa must too."""

import pytest

from annotation.agreement.gate import GATE_FAILED, GATE_NOT_ENOUGH_DATA, GATE_PASSED, gate_from_report
from annotation.agreement.services import agreement_report_for_batch
from annotation.models import GateRule
from tests import factories


def report(*, n=60, alpha=0.6, ci=(0.45, 0.75), kappas=(0.5, 0.6, 0.7)):
    return {"n_items_multiply_rated": n, "krippendorff_alpha": alpha, "krippendorff_alpha_ci": list(ci) if ci else None,
            "per_rater": [{"rater": f"r{i}", "kappa_vs_consensus": k, "n_consensus": n} for i, k in enumerate(kappas)],
            "notes": []}


def gate(r, **kw):
    return gate_from_report(r, **{"min_alpha": 0.4, "min_rater_kappa": 0.2, "min_pairs": 50, "rule": GateRule.POINT, **kw})


def test_one_pair_short_of_the_minimum_is_not_enough_data_never_failed_or_passed():
    below, at = gate(report(n=49)), gate(report(n=50))
    assert below["status"] == GATE_NOT_ENOUGH_DATA and below["passed"] is False
    assert "49 pair(s)" in below["reasons"][0] and "at least 50" in below["reasons"][0]
    assert at["status"] == GATE_PASSED and at["passed"] and at["n_pairs"] == 50


def test_alpha_exactly_at_the_threshold_passes_and_just_below_fails():
    assert gate(report(alpha=0.4))["status"] == GATE_PASSED
    below = gate(report(alpha=0.3999))
    assert below["status"] == GATE_FAILED and "0.400" in below["reasons"][0] and "on 60 pairs" in below["reasons"][0]


def test_lower_bound_rule_judges_the_interval_not_the_estimate():
    noisy = report(n=60, alpha=0.61, ci=(0.10, 1.0))
    assert gate(noisy, rule=GateRule.POINT)["passed"]
    strict = gate(noisy, rule=GateRule.LOWER_BOUND)
    assert strict["status"] == GATE_FAILED and "lower bound" in strict["reasons"][0]
    assert "lower bound" in strict["decided_by"] and "on 60 pairs" in strict["decided_by"]
    assert gate(report(alpha=0.61, ci=(0.40, 0.8)), rule=GateRule.LOWER_BOUND)["passed"]


def test_undefined_alpha_or_missing_interval_is_not_enough_data():
    assert gate(report(alpha=None, ci=None))["status"] == GATE_NOT_ENOUGH_DATA
    assert gate(report(ci=None), rule=GateRule.LOWER_BOUND)["status"] == GATE_NOT_ENOUGH_DATA


def test_one_rater_below_the_kappa_threshold_fails_with_their_name():
    out = gate(report(kappas=(0.5, 0.19, 0.7)))
    assert out["status"] == GATE_FAILED and out["reasons"] == [
        "Rater r1: kappa against the consensus of the other raters is 0.190 (on 60 pairs), below the threshold 0.20."]


@pytest.mark.django_db
def test_a_small_batch_with_a_fine_looking_alpha_reads_not_enough_data():
    batch, _, _ = factories.judged_batch(n_pairs=10, seed=3, agreement=0.85)
    batch.gate_min_pairs = 50
    batch.save(update_fields=["gate_min_pairs"])
    out = agreement_report_for_batch(batch=batch)["gate"]
    assert out["status"] == GATE_NOT_ENOUGH_DATA and out["n_pairs"] == 10 and not out["passed"]


@pytest.mark.django_db
def test_admin_sets_the_gate_when_creating_a_batch(client):
    admin = factories.admin()
    factories.SpecialtyFactory(name="Cardiology", slug="cardiology")
    client.force_login(admin)
    ok = client.post("/api/batches/", {"name": "G", "specialty": "Cardiology", "gate_min_pairs": 120,
                                       "gate_rule": "lower_bound", "min_alpha": 0.5}, content_type="application/json")
    assert ok.status_code == 201, ok.content
    assert (ok.json()["gate_min_pairs"], ok.json()["gate_rule"], ok.json()["min_alpha"]) == (120, "lower_bound", 0.5)
    bad = client.post("/api/batches/", {"name": "H", "specialty": "Cardiology", "gate_rule": "vibes"},
                      content_type="application/json")
    assert bad.status_code == 400 and "gate_rule" in bad.json().get("errors", bad.json()).__str__()
