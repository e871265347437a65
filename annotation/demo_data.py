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

from .assignment import JudgmentInput, judgment_submit, pair_lease_next
from .importing import pairs_import
from .models import Batch, Role
from .services import batch_create, batch_open, rater_create, specialty_get_or_create

User = get_user_model()
DEMO_FILE = Path(__file__).parent / "demo" / "kqa_demo.jsonl"
ADMIN = ("admin", "clinpref-admin")
PHYSICIANS = [("dr_ito", "Internal Medicine"), ("dr_patel", "Internal Medicine"), ("dr_okafor", "Internal Medicine")]
PHYSICIAN_PASSWORD = "clinpref-demo"
SIMULATED = [f"sim_cardiologist_{i}" for i in (1, 2, 3)]


def demo_lines(specialty: str) -> list[str]:
    lines = []
    for raw in DEMO_FILE.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            row = json.loads(raw)
            if row.get("specialty") == specialty:
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
            # Mostly prefer the physician answer, strongly so when the other has a clinical error.
            weakness = assignment.pair.metadata.get("weakness", "")
            physician_first = assignment.a_shown_first
            roll = rng.random()
            if roll < 0.12:
                display = "="
            elif roll < 0.22:
                display = "2>1" if physician_first else "1>2"
            else:
                strong = weakness == "clinical_error" and rng.random() < 0.7
                display = ("1>>2" if strong else "1>2") if physician_first else ("2>>1" if strong else "2>1")
            judgment_submit(assignment_id=assignment.pk, rater=user, data=JudgmentInput(
                preference=display, idempotency_key=f"demo-{username}-{assignment.pk}",
                rationale="Simulated demo judgment.", time_spent_ms=rng.randint(20_000, 120_000),
            ))
            if n > 100:
                break
