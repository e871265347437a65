"""The demo: real patient questions from K-QA, each physician answer paired with a weaker
answer written for the demo. DEMO DATA, NOT MEDICAL ADVICE.

Loads three batches (one per specialty) so every part of the product has something to show:
an open batch for the demo physicians to label, an open batch already labelled by simulated
raters (close it to see agreement, export and training), and a draft batch."""

import json
import random
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from annotation.labeling.assignment import JudgmentInput, judgment_submit, pair_lease_next
from annotation.labeling.importing import pairs_import
from annotation.models import Batch, Pair, Role
from annotation.labeling.services import batch_create, batch_open, rater_create, specialty_get_or_create

User = get_user_model()
DEMO_FILE = Path(__file__).parent / "kqa_demo.jsonl"
ADMIN = ("admin", "clinpref-admin")
PHYSICIANS = [("dr_ito", "Internal Medicine"), ("dr_patel", "Internal Medicine"), ("dr_okafor", "Internal Medicine")]
PHYSICIAN_PASSWORD = "clinpref-demo"
SIMULATED = [f"sim_cardiologist_{i}" for i in (1, 2, 3)]


def demo_lines(specialty: str) -> list[str]:
    """The demo file puts the physician answer first; which side is "A" in a real batch is
    arbitrary, so half the pairs are swapped (seeded) or every label would say "A better"."""
    rng = random.Random(f"demo-{specialty}")
    lines = []
    for raw in DEMO_FILE.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        row = json.loads(raw)
        if row.get("specialty") != specialty:
            continue
        if rng.random() < 0.5:
            row["response_a"], row["response_b"] = row["response_b"], row["response_a"]
            row["model_a"], row["model_b"] = row["model_b"], row["model_a"]
            if "gold_preference" in row:
                row["gold_preference"] = {"A>B": "B>A", "A>>B": "B>>A"}[row["gold_preference"]]
        lines.append(json.dumps(row))
    return lines


def demo_load(*, stdout=None) -> dict:
    """Idempotent: does nothing when the demo batches exist. Returns the log-ins."""
    say = stdout.write if stdout else (lambda s: None)
    logins = {"admin": ADMIN, "physicians": [(u, PHYSICIAN_PASSWORD) for u, _ in PHYSICIANS]}
    if Batch.objects.filter(name__startswith="K-QA demo").exists():
        say("Demo data already loaded.")
        return logins
    with transaction.atomic():
        for name in ("Cardiology", "Psychiatry", "Internal Medicine"):
            specialty_get_or_create(name=name)
        admin, _ = rater_create(username=ADMIN[0], password=ADMIN[1], specialty_name="Internal Medicine", role=Role.ADMIN)
        for username, specialty in PHYSICIANS:
            rater_create(username=username, password=PHYSICIAN_PASSWORD, specialty_name=specialty,
                         credentials="MD (demo account)")
        batches = {}
        for specialty in ("Internal Medicine", "Cardiology", "Psychiatry"):
            batch = batch_create(
                name=f"K-QA demo — {specialty}", specialty_name=specialty, created_by=admin, calibration_rate=0.1,
                description="DEMO DATA, NOT MEDICAL ADVICE. K-QA patient questions (MIT licence); second answers "
                            "written for the demo, some with deliberate clinical errors.",
            )
            pairs_import(batch=batch, lines=demo_lines(specialty), actor=admin)
            batches[specialty] = batch
        batch_open(batch_id=batches["Internal Medicine"].pk, actor=admin)
        batch_open(batch_id=batches["Cardiology"].pk, actor=admin)
        _simulate_raters(batch=batches["Cardiology"])
    say("Loaded the K-QA demo: 3 batches, 30 pairs.")
    return logins


def _simulate_raters(*, batch: Batch, seed: int = 7) -> None:
    """Three simulated cardiologists label the cardiology batch through the real hot path,
    so agreement, export and training have data to show. Their accounts cannot log in."""
    rng = random.Random(seed)
    for username in SIMULATED:
        user, _ = rater_create(username=username, password=f"unusable-{rng.random()}", specialty_name=batch.specialty.name,
                               credentials="Simulated demo rater")
        user.set_unusable_password()
        user.save(update_fields=["password"])
        n = 0
        while (assignment := pair_lease_next(rater=user, batch_id=batch.pk, rng=rng)) is not None:
            n += 1
            pair = Pair.objects.select_related("completion_a").get(pk=assignment.pair_id)
            physician_is_a = pair.completion_a.model_name == "physician-reference"
            physician_slot = 1 if physician_is_a == assignment.a_shown_first else 2
            other_slot = 3 - physician_slot
            # Mostly prefer the physician's answer, strongly when the other has a clinical error.
            roll = rng.random()
            if roll < 0.04:
                display = "="
            elif roll < 0.07:
                display = f"{other_slot}>{physician_slot}"
            else:
                strong = pair.metadata.get("weakness") == "clinical_error" and rng.random() < 0.8
                display = f"{physician_slot}{'>>' if strong else '>'}{other_slot}"
            judgment_submit(assignment_id=assignment.pk, rater=user, data=JudgmentInput(
                preference=display, idempotency_key=f"demo-{username}-{assignment.pk}",
                rationale="Simulated demo judgment.", time_spent_ms=rng.randint(20_000, 120_000),
            ))
            if n > 100:
                break
