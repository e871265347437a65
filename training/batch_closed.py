"""What a closed batch starts: the agreement gate, an export with the default params and the
batch's training pipeline - exactly once per batch. Called by the batch_closed event's subscriber
(training.handlers), in the worker that dispatches the event: one hop from the outbox row."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from annotation.audit import audit_record
from annotation.errors import NotFound
from annotation.models import Batch

from .models import POLICY_KINDS, Round, RunKind, RunStatus, TrainingPipeline
from .conf import training_setting
from .services import pipeline_start, run_base

logger = logging.getLogger("training")


def onward_bases(*, batch_id: int) -> dict[str, str]:
    """For a batch a round generated: train onward, the policy from the policy the round sampled
    and the reward model from the one that scored the round (the RLHF loop's iterated training);
    {} for any other batch, which starts from the configured base models."""
    rnd = Round.objects.filter(batch_id=batch_id).select_related("source_run", "reward_run").first()
    if rnd is None:
        return {}
    bases = {}
    if rnd.source_run is not None and rnd.source_run.status == RunStatus.SUCCEEDED:
        bases.update({kind: run_base(rnd.source_run) for kind in POLICY_KINDS})
    if rnd.reward_run is not None and rnd.reward_run.status == RunStatus.SUCCEEDED:
        bases[RunKind.REWARD_MODEL] = run_base(rnd.reward_run)
    return bases


def batch_closed_handle(*, batch_id: int) -> TrainingPipeline | None:
    """The batch_closed subscriber: check the agreement gate, export with the default params and
    start the batch's training pipeline - exactly once per batch, even when two closes or a retried
    event race. The batch row lock serialises them; the pipeline's unique trigger_key backs it up."""
    from annotation.agreement.gate import batch_gate_block_record
    from annotation.agreement.services import batch_agreement_gate
    from annotation.exports.services import export_create, export_default_params

    key = f"batch_closed:{batch_id}"
    try:
        with transaction.atomic():
            batch = Batch.objects.select_for_update().filter(pk=batch_id).first()
            if batch is None:
                raise NotFound(f"Batch {batch_id} does not exist.")
            if TrainingPipeline.objects.filter(trigger_key=key).exists():
                logger.info("training.batch_closed_duplicate", extra={"batch_id": batch_id})
                return None
            if batch.gate_blocked_at is not None:
                return None  # decided on an earlier delivery; the batch row says so
            passed, reasons = batch_agreement_gate(batch=batch)
            if not passed and not batch.gate_override_reason.strip():
                batch_gate_block_record(batch=batch, reasons=reasons)
                logger.info("training.gate_blocked", extra={"batch_id": batch_id})
                return None
            if not passed:
                audit_record(actor=batch.closed_by, action="training.gate_overridden", obj=batch, batch=batch,
                             data={"reasons": reasons, "override_reason": batch.gate_override_reason})
            export = export_create(batch=batch, params=export_default_params(), created_by=batch.closed_by)
            # Hyper-parameters for automatic launches come from settings (CLINPREF["TRAINING_AUTO_PARAMS"]),
            # so operators tune them per deployment without touching batches.
            runs = pipeline_start(export=export, pipeline=batch.training_pipeline, params=training_setting("TRAINING_AUTO_PARAMS", None),
                                  base_model=training_setting("TRAINING_AUTO_BASE_MODEL", ""), base_models=onward_bases(batch_id=batch.pk),
                                  created_by=batch.closed_by, strict_params=False,
                                  trigger=TrainingPipeline.Trigger.BATCH_CLOSED, trigger_key=key)
            return runs[0].pipeline
    except IntegrityError:
        # Another process won the unique trigger_key between our check and insert.
        logger.info("training.batch_closed_duplicate", extra={"batch_id": batch_id})
        return None
