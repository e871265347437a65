"""The PHI guard: its recall and precision on a labelled sample, and what an import does with a
likely identifier under each batch policy."""

import json

import pytest

from annotation.errors import Conflict, ImportRejected
from annotation.labeling import services
from annotation.labeling.importing import pairs_import
from annotation.labeling.phi import KIND_WORDS, PATTERNS, phi_find, phi_kinds
from annotation.models import AuditEvent, BatchState, Pair, PhiPolicy
from tests.annotation.labeling.phi_sample import SAMPLE
from tests.factories import BatchFactory, admin


def measure(sample) -> dict:
    """Per kind and overall: true positives, false positives, false negatives (a text counts
    once per kind)."""
    per_kind = {kind: [0, 0, 0] for kind in PATTERNS}
    for text, expected in sample:
        got = phi_kinds(text)
        for kind in got & expected:
            per_kind[kind][0] += 1
        for kind in got - expected:
            per_kind[kind][1] += 1
        for kind in expected - got:
            per_kind[kind][2] += 1
    tp, fp, fn = (sum(v[i] for v in per_kind.values()) for i in range(3))
    return {"per_kind": per_kind, "recall": tp / (tp + fn), "precision": tp / (tp + fp), "tp": tp, "fp": fp, "fn": fn}


def test_recall_and_precision_on_the_labelled_sample(capsys):
    assert len(SAMPLE) >= 60
    assert sum(1 for _, kinds in SAMPLE if not kinds) >= 25  # negatives: doses, labs, clinical dates
    figures = measure(SAMPLE)
    with capsys.disabled():
        print(f"\nPHI guard on {len(SAMPLE)} snippets: recall {figures['recall']:.3f}, precision {figures['precision']:.3f} "
              f"(tp {figures['tp']}, fp {figures['fp']}, fn {figures['fn']})")
        for kind, (tp, fp, fn) in figures["per_kind"].items():
            print(f"  {kind:24s} caught {tp}/{tp + fn}, false alarms {fp}")
    assert figures["recall"] >= 0.9
    assert figures["precision"] >= 0.95
    # every kind is caught at least once: no recogniser is dead
    assert all(tp > 0 for tp, _, _ in figures["per_kind"].values())


@pytest.mark.parametrize("text", [t for t, kinds in SAMPLE if not kinds])
def test_clinical_text_without_identifiers_passes(text):
    assert phi_find(text) == []


def test_findings_point_at_the_identifier():
    text = "Call Mr. Okafor on 617-555-0143 today."
    spans = {(f.kind, text[f.start:f.end]) for f in phi_find(text)}
    assert spans == {("name_with_title", "Mr. Okafor"), ("phone_or_fax", "617-555-0143")}
    assert set(KIND_WORDS) == set(PATTERNS)


def jsonl(*rows) -> list[str]:
    return [json.dumps(r) for r in rows]


CLEAN = {"prompt": "Is 5 mg amlodipine enough?", "response_a": "Often, yes.", "response_b": "Double it."}
WITH_PHI = {"prompt": "My MRN: 00482913. Chest pain?", "response_a": "Go to A&E.",
            "response_b": "Email me at jo@example.com"}


@pytest.mark.django_db
def test_block_policy_refuses_the_import_naming_lines_and_kinds():
    batch = BatchFactory(name="phi-block")
    assert batch.phi_policy == PhiPolicy.BLOCK  # the default
    with pytest.raises(ImportRejected) as refused:
        pairs_import(batch=batch, lines=jsonl(CLEAN, WITH_PHI), actor=None)
    assert refused.value.errors == [{"line": 2, "message": "likely patient identifier: a medical record number in prompt, "
                                                           "an e-mail address in response_b"}]
    assert not Pair.objects.filter(batch=batch).exists()


@pytest.mark.django_db
def test_review_policy_flags_pairs_and_keeps_the_batch_shut_until_cleared():
    boss = admin("boss")
    batch = BatchFactory(name="phi-review")
    batch = services.batch_settings_update(batch_id=batch.pk, actor=boss, phi_policy=PhiPolicy.REVIEW)
    assert pairs_import(batch=batch, lines=jsonl(CLEAN, WITH_PHI), actor=boss) == 2
    flagged = Pair.objects.get(batch=batch, phi_findings__isnull=False)
    assert {f["kind"] for f in flagged.phi_findings} == {"medical_record_number", "email"}
    assert Pair.objects.filter(batch=batch, phi_findings__isnull=True).count() == 1
    with pytest.raises(Conflict, match="patient identifiers"):
        services.batch_open(batch_id=batch.pk, actor=boss)
    with pytest.raises(Exception, match="note is required"):
        services.batch_phi_clear(batch_id=batch.pk, actor=boss, pair_ids=[flagged.pk], note=" ")
    assert services.batch_phi_clear(batch_id=batch.pk, actor=boss, pair_ids=[flagged.pk], note="synthetic MRN") == 1
    assert services.batch_open(batch_id=batch.pk, actor=boss).state == BatchState.OPEN
    cleared = AuditEvent.objects.get(action="pair.phi_cleared")
    assert cleared.data["note"] == "synthetic MRN" and len(cleared.data["findings"]) == 2
    assert AuditEvent.objects.get(action="batch.settings_changed").data == {"phi_policy": {"from": "block", "to": "review"}}


@pytest.mark.django_db
def test_review_policy_blocks_when_the_batch_is_already_open():
    boss = admin("boss")
    batch = BatchFactory(name="phi-open", phi_policy=PhiPolicy.REVIEW, state=BatchState.OPEN)
    with pytest.raises(ImportRejected):
        pairs_import(batch=batch, lines=jsonl(WITH_PHI), actor=boss)


@pytest.mark.django_db
def test_phi_review_api(admin_client):
    batch = BatchFactory(name="phi-api", phi_policy=PhiPolicy.REVIEW)
    pairs_import(batch=batch, lines=jsonl(WITH_PHI), actor=None)
    listed = admin_client.get(f"/api/batches/{batch.pk}/phi/").json()
    assert listed["count"] == 1 and listed["results"][0]["phi_findings"][0]["field"] == "prompt"
    pair_id = listed["results"][0]["id"]
    assert admin_client.post(f"/api/batches/{batch.pk}/open/").status_code == 409
    done = admin_client.post(f"/api/batches/{batch.pk}/phi/", {"pair_ids": [pair_id], "note": "test data"}, format="json")
    assert done.json() == {"cleared": 1}
    assert admin_client.post(f"/api/batches/{batch.pk}/open/").status_code == 200
