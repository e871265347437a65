"""Writes of a round's life cycle: create (and queue generation), cancel, resume, reap, and the
state changes the generating worker makes (claim, each response, the draft batch). Keyword-only,
audited. Generation is queued through training.dispatch, never by importing the task."""

from __future__ import annotations

import json
import logging
import socket
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.audit import audit_record
from annotation.errors import Conflict, DomainError, NotFound
from annotation.models import Batch, Pair

from .. import dispatch
from ..conf import stale_after
from ..models import POLICY_KINDS, GeneratedResponse, Round, RoundPair, RoundStatus, RunKind, RunStatus, TrainingRun
from ..services import DEMO_POLICY_BASE, run_base_source
from . import selection

logger = logging.getLogger("training")

ROLES = ("new", "previous", "reference")
# Sampling defaults: the usual chat-model settings; a fixed seed so a round can be reproduced.
ROUND_DEFAULTS = {
    "responses_per_prompt": 2,
    "temperature": 0.7,
    "top_p": 0.95,
    "max_new_tokens": 128,
    "seed": 0,
    "models": ["new", "previous"],
    "n_pairs": None,  # None: one pair per prompt and model pairing, capped at the candidates
    "shares": selection.DEFAULT_SHARES,
    "engine": "auto",
    "chat": False,
}


def _options_validate(options: dict) -> dict:
    unknown = set(options) - set(ROUND_DEFAULTS)
    if unknown:
        raise DomainError(f"Unknown round option(s): {', '.join(sorted(unknown))}.")
    o = {**ROUND_DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    try:
        o["responses_per_prompt"] = int(o["responses_per_prompt"])
        o["temperature"], o["top_p"] = float(o["temperature"]), float(o["top_p"])
        o["max_new_tokens"], o["seed"] = int(o["max_new_tokens"]), int(o["seed"])
        o["shares"] = selection.shares_validate(o["shares"])
    except (TypeError, ValueError) as exc:
        raise DomainError(str(exc)) from None
    if not 1 <= o["responses_per_prompt"] <= 16:
        raise DomainError("responses_per_prompt must be between 1 and 16.")
    if not 0.0 <= o["temperature"] <= 5.0 or not 0.0 < o["top_p"] <= 1.0:
        raise DomainError("temperature must be in [0, 5] and top_p in (0, 1].")
    if not 1 <= o["max_new_tokens"] <= 8192:
        raise DomainError("max_new_tokens must be between 1 and 8192.")
    models = list(dict.fromkeys(o["models"] or []))
    if not models or set(models) - set(ROLES):
        raise DomainError(f"models must be a non-empty list of {', '.join(ROLES)}.")
    o["models"] = models
    if o["n_pairs"] is not None and not 1 <= int(o["n_pairs"]) <= 100_000:
        raise DomainError("n_pairs must be between 1 and 100000.")
    if o["engine"] not in ("auto", "vllm", "transformers"):
        raise DomainError("engine must be auto, vllm or transformers.")
    if len(models) == 1 and o["responses_per_prompt"] < 2:
        raise DomainError("With one model, sample at least 2 responses per prompt, or there is nothing to compare.")
    return o


def prompts_parse(lines) -> list[dict]:
    """A JSONL of prompts: {"prompt": text, "id": optional}; a bad line rejects the file."""
    out, errors = [], []
    for number, raw in enumerate(lines, 1):
        raw = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            text = obj["prompt"] if isinstance(obj, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise ValueError("each line needs a non-empty string 'prompt'")
            out.append({"text": text, "id": str(obj.get("id", ""))[:200]})
        except (ValueError, KeyError, TypeError) as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        raise DomainError("The prompts file has bad lines; nothing was used. " + "; ".join(errors[:20]))
    return out


def batch_prompts(*, batch: Batch) -> list[dict]:
    """The distinct prompts of a batch's ordinary (non-calibration) pairs, in pair order."""
    seen, out = set(), []
    for pair in Pair.objects.filter(batch=batch, gold_preference__isnull=True).select_related("prompt").order_by("id"):
        if pair.prompt.text not in seen:
            seen.add(pair.prompt.text)
            out.append({"text": pair.prompt.text, "id": pair.prompt.external_id})
    return out


def _run_model(run: TrainingRun) -> dict:
    return {"name": f"{run.get_kind_display()} run {run.pk}", "checkpoint": run.artifact_path, "run": run.pk}


def _base_model(base: str, *, seed: int) -> dict:
    if base == DEMO_POLICY_BASE:
        return {"name": f"{base} (seed {seed})", "checkpoint": f"built on the worker with seed {seed}", "path": base, "seed": seed}
    source = run_base_source(base)
    if source is not None:  # a policy trained onward: its base is the earlier run's model
        return _run_model(source)
    return {"name": base, "checkpoint": base, "path": base}


def _reward_run_for(*, source_run: TrainingRun | None, previous_batch: Batch | None) -> TrainingRun | None:
    """The reward model behind the source policy, else the newest succeeded one on the previous batch."""
    if source_run and source_run.parent_id and source_run.parent.kind == RunKind.REWARD_MODEL \
            and source_run.parent.status == RunStatus.SUCCEEDED:
        return source_run.parent
    if previous_batch is None:
        return None
    return (TrainingRun.objects.filter(kind=RunKind.REWARD_MODEL, status=RunStatus.SUCCEEDED, export__batch=previous_batch)
            .order_by("-finished_at", "-id").first())


def _new_task_id(rnd: Round) -> None:
    rnd.celery_task_id = str(uuid.uuid4())
    rnd.save(update_fields=["celery_task_id"])


def _dispatch(rnd: Round) -> None:
    task_id = rnd.celery_task_id
    transaction.on_commit(lambda: dispatch.round_enqueue(round_id=rnd.pk, task_id=task_id))


@transaction.atomic
def round_create(
    *,
    created_by,
    source_run_id: int | None = None,
    source_model: str = "",
    reference_model: str = "",
    previous_batch_id: int | None = None,
    use_previous_prompts: bool = True,
    prompt_lines=None,
    reward_run_id: int | None = None,
    batch_name: str = "",
    options: dict | None = None,
) -> Round:
    """Queue generation of the next round's draft batch from a succeeded policy run (or a registered
    model: a hub id or a path on the GPU host). Prompts: the previous batch's, a JSONL file's, or both."""
    o = _options_validate(options or {})
    if bool(source_run_id) == bool(source_model.strip()):
        raise DomainError("Give exactly one of source_run (a succeeded policy run) or source_model (a hub id or path).")
    source_run = None
    if source_run_id:
        source_run = TrainingRun.objects.select_related("export__batch", "parent").filter(pk=source_run_id).first()
        if source_run is None:
            raise NotFound(f"Training run {source_run_id} does not exist.")
        if source_run.kind not in POLICY_KINDS or source_run.status != RunStatus.SUCCEEDED:
            raise Conflict(f"Run {source_run.pk} is a {source_run.kind} run that {source_run.status}; "
                           "a round samples a succeeded policy run (ppo, dpo, grpo, rloo).")
    previous_batch = None
    if previous_batch_id:
        previous_batch = Batch.objects.filter(pk=previous_batch_id).first()
        if previous_batch is None:
            raise NotFound(f"Batch {previous_batch_id} does not exist.")
    elif source_run is not None:
        previous_batch = source_run.export.batch
    if previous_batch is None:
        raise DomainError("Give previous_batch: the batch this round follows (its specialty, prompts and anchors).")

    prompts = batch_prompts(batch=previous_batch) if use_previous_prompts else []
    if prompt_lines is not None:
        seen = {p["text"] for p in prompts}
        prompts += [p for p in prompts_parse(prompt_lines) if p["text"] not in seen]
    if not prompts:
        raise DomainError("No prompts: use the previous batch's prompts, upload a JSONL of prompts, or both.")

    reward_run = None
    if reward_run_id:
        reward_run = TrainingRun.objects.filter(pk=reward_run_id, kind=RunKind.REWARD_MODEL, status=RunStatus.SUCCEEDED).first()
        if reward_run is None:
            raise NotFound(f"No succeeded reward-model run {reward_run_id}.")
    else:
        reward_run = _reward_run_for(source_run=source_run, previous_batch=previous_batch)

    previous_round = Round.objects.filter(batch=previous_batch).first()
    number = (previous_round.number if previous_round else 1) + 1
    seed = int((source_run.config or {}).get("seed", 0)) if source_run else 0
    new = _run_model(source_run) if source_run else {"name": source_model.strip(), "checkpoint": source_model.strip(),
                                                      "path": source_model.strip()}
    reference = None
    if reference_model.strip():
        reference = _base_model(reference_model.strip(), seed=seed)
    elif source_run is not None:
        reference = _base_model(source_run.base_model, seed=seed)
    previous = dict(previous_round.models_used["new"]) if previous_round and previous_round.models_used.get("new") else reference
    used: dict[str, dict] = {}
    for role, spec in (("new", new), ("previous", previous), ("reference", reference)):
        if role not in o["models"]:
            continue
        if spec is None:
            raise DomainError(f"There is no {role} model to sample: give reference_model (a hub id or path).")
        if any(s["name"] == spec["name"] for s in used.values()):
            continue  # e.g. the previous policy *is* the reference in round 2: sample it once
        used[role] = spec
    if len(used) == 1 and o["responses_per_prompt"] < 2:
        raise DomainError("Only one distinct model to sample: ask for at least 2 responses per prompt.")

    name = (batch_name or f"Round {number} — {previous_batch.name}").strip()[:200]
    if Batch.objects.filter(name=name).exists() or Round.objects.filter(batch_name=name).exclude(
            status__in=(RoundStatus.FAILED, RoundStatus.CANCELLED)).exists():
        raise Conflict(f"A batch named {name!r} already exists (or is being generated); choose another batch_name.")
    is_demo = bool(source_run and source_run.is_demo) or any(s.get("path") == DEMO_POLICY_BASE for s in used.values())
    rnd = Round.objects.create(
        number=number, source_run=source_run, source_model=source_model.strip(), reward_run=reward_run,
        previous_batch=previous_batch, previous_round=previous_round, batch_name=name, options=o, prompts=prompts,
        models_used=used, is_demo=is_demo, created_by=created_by,
        responses_total=len(prompts) * len(used) * o["responses_per_prompt"],
    )
    audit_record(actor=created_by, action="round.created", obj=rnd, batch=previous_batch,
                 data={"number": number, "source_run": source_run.pk if source_run else None, "source_model": source_model,
                       "models": {r: s["name"] for r, s in used.items()}, "prompts": len(prompts), "options": o,
                       "reward_run": reward_run.pk if reward_run else None})
    _new_task_id(rnd)
    _dispatch(rnd)
    return rnd


def _revoke(task_id: str) -> None:
    try:
        from config.celery_app import app

        app.control.revoke(task_id)
    except Exception:  # the worker stops at its next response anyway
        logger.warning("rounds.revoke_failed", exc_info=True)


@transaction.atomic
def round_cancel(*, round_id: int, actor) -> Round:
    """A queued round is cancelled at once; a generating one stops after its current response.
    The responses already generated are kept, so the round can be resumed later."""
    rnd = Round.objects.select_for_update().filter(pk=round_id).first()
    if rnd is None:
        raise NotFound(f"Round {round_id} does not exist.")
    if rnd.status not in (RoundStatus.QUEUED, RoundStatus.GENERATING):
        raise Conflict(f"Round {rnd.pk} is {rnd.status}; there is nothing to cancel.", extra={"status": rnd.status})
    rnd.cancel_requested = True
    fields = ["cancel_requested"]
    if rnd.status == RoundStatus.QUEUED:
        rnd.status, rnd.finished_at = RoundStatus.CANCELLED, timezone.now()
        fields += ["status", "finished_at"]
        task_id = rnd.celery_task_id
        transaction.on_commit(lambda: _revoke(task_id))
    rnd.save(update_fields=fields)
    audit_record(actor=actor, action="round.cancel_requested", obj=rnd, batch=rnd.previous_batch_id, data={"status": rnd.status})
    return rnd


@transaction.atomic
def round_resume(*, round_id: int, actor) -> Round:
    """Queue a failed or cancelled round again; it keeps every response already generated."""
    rnd = Round.objects.select_for_update().filter(pk=round_id).first()
    if rnd is None:
        raise NotFound(f"Round {round_id} does not exist.")
    if rnd.status not in (RoundStatus.FAILED, RoundStatus.CANCELLED):
        raise Conflict(f"Round {rnd.pk} is {rnd.status}; only a failed or cancelled round can be resumed.", extra={"status": rnd.status})
    rnd.status, rnd.cancel_requested, rnd.error, rnd.finished_at = RoundStatus.QUEUED, False, "", None
    rnd.save(update_fields=["status", "cancel_requested", "error", "finished_at"])
    _new_task_id(rnd)
    audit_record(actor=actor, action="round.resumed", obj=rnd, batch=rnd.previous_batch_id, data={"kept_responses": rnd.responses_done})
    _dispatch(rnd)
    return rnd


def rounds_reap_stale() -> list[int]:
    """Mark generating rounds whose worker stopped reporting as failed, so an admin can resume them
    (a redelivered task takes them over on its own: round_claim)."""
    cutoff = timezone.now() - stale_after()
    handled = []
    for rnd in Round.objects.filter(status=RoundStatus.GENERATING, heartbeat_at__lt=cutoff):
        with transaction.atomic():
            locked = Round.objects.select_for_update().filter(pk=rnd.pk, status=RoundStatus.GENERATING, heartbeat_at__lt=cutoff).first()
            if locked is None:
                continue
            locked.status, locked.finished_at = RoundStatus.FAILED, timezone.now()
            locked.error = f"The worker stopped reporting (no heartbeat since {locked.heartbeat_at.isoformat()}); resume to continue."
            locked.save(update_fields=["status", "finished_at", "error"])
            audit_record(actor=None, action="round.reaped", obj=locked, batch=locked.previous_batch_id, data={})
            handled.append(locked.pk)
    return handled


# ---------------------------------------------------------------- the generating worker


def round_claim(*, round_id: int, task_id: str) -> Round | None:
    """Mark the round generating on this host, or None when it is not ours: finished, cancelled,
    or generating elsewhere with a live heartbeat (a redelivered task after a dead worker takes over)."""
    with transaction.atomic():
        rnd = Round.objects.select_for_update().filter(pk=round_id).first()
        if rnd is None:
            return None
        if rnd.status == RoundStatus.GENERATING:
            if rnd.heartbeat_at and rnd.heartbeat_at > timezone.now() - stale_after():
                return None
        elif rnd.status != RoundStatus.QUEUED:
            return None
        if rnd.cancel_requested:
            rnd.status, rnd.finished_at = RoundStatus.CANCELLED, timezone.now()
            rnd.save(update_fields=["status", "finished_at"])
            return None
        now = timezone.now()
        rnd.status, rnd.heartbeat_at, rnd.started_at = RoundStatus.GENERATING, now, rnd.started_at or now
        rnd.host, rnd.attempts, rnd.error = socket.gethostname()[:200], rnd.attempts + 1, ""
        rnd.celery_task_id = task_id or rnd.celery_task_id
        rnd.save(update_fields=["status", "heartbeat_at", "started_at", "host", "attempts", "error", "celery_task_id"])
        audit_record(actor=None, action="round.generating", obj=rnd, batch=rnd.previous_batch_id,
                     data={"host": rnd.host, "attempt": rnd.attempts, "kept_responses": rnd.responses.count()})
        return rnd


def response_record(*, round_id: int, prompt_index: int, sample_index: int, role: str, model: dict, sampling: dict,
                    seed: int, text: str) -> None:
    """Store one generated response at once (its own transaction), bump progress and heartbeat."""
    try:
        with transaction.atomic():
            GeneratedResponse.objects.create(
                round_id=round_id, prompt_index=prompt_index, sample_index=sample_index, role=role, model_name=model["name"],
                checkpoint=model.get("checkpoint", ""), sampling=sampling, seed=seed, text=text)
    except IntegrityError:  # already stored by an earlier attempt
        pass
    Round.objects.filter(pk=round_id).update(responses_done=GeneratedResponse.objects.filter(round_id=round_id).count(),
                                             heartbeat_at=timezone.now())


def round_cancel_requested(*, round_id: int) -> bool:
    return Round.objects.filter(pk=round_id, cancel_requested=True).exists()


def round_engine_set(*, round_id: int, engine: str) -> None:
    Round.objects.filter(pk=round_id).update(engine=engine[:200], heartbeat_at=timezone.now())


def responses_scores_set(*, scores: dict[int, float]) -> None:
    for response_id, score in scores.items():
        GeneratedResponse.objects.filter(pk=response_id).update(reward_score=score)


def round_finish_cancelled(*, round_id: int) -> None:
    with transaction.atomic():
        rnd = Round.objects.select_for_update().get(pk=round_id)
        rnd.status, rnd.finished_at = RoundStatus.CANCELLED, timezone.now()
        rnd.save(update_fields=["status", "finished_at"])
        audit_record(actor=None, action="round.cancelled", obj=rnd, batch=rnd.previous_batch_id, data={"kept_responses": rnd.responses_done})


def round_finish_failed(*, round_id: int, error: str) -> None:
    with transaction.atomic():
        rnd = Round.objects.select_for_update().get(pk=round_id)
        rnd.status, rnd.finished_at, rnd.error = RoundStatus.FAILED, timezone.now(), error[-5000:]
        rnd.save(update_fields=["status", "finished_at", "error"])
        audit_record(actor=None, action="round.failed", obj=rnd, batch=rnd.previous_batch_id, data={"error": error[-500:]})


@transaction.atomic
def round_batch_build(*, round_id: int, selected: list[dict]) -> Batch:
    """The draft batch: a normal batch whose pairs carry only text. Each entry of `selected` is
    {"prompt", "a": {"text", "response"|None}, "b": {...}, "rule", "rm_prob_b", "anchor_of", "role_a", "role_b",
    "model_a", "model_b"}. Which model wrote what, the rule and the prediction go to RoundPair only;
    completions carry no model name, so nothing reaches a physician through any page or export."""
    from annotation.labeling.importing import pair_fingerprint, pairs_import
    from annotation.labeling.services import batch_create

    rnd = Round.objects.select_for_update(of=("self",)).select_related("previous_batch__specialty").get(pk=round_id)
    prev = rnd.previous_batch
    batch = batch_create(
        name=rnd.batch_name, specialty_name=prev.specialty.name, created_by=rnd.created_by, raters_per_pair=prev.raters_per_pair,
        rubric=prev.rubric, rationale_policy=prev.rationale_policy, calibration_rate=0.0, lease_seconds=prev.lease_seconds,
        description=(("DEMO ROUND: tiny random-weight models, not a clinical model. " if rnd.is_demo else "")
                     + f"Round {rnd.number} of the RLHF loop after “{prev.name}”: responses sampled from the trained policy "
                       "and the model it is compared with, pairs chosen by the round's selection rules."),
    )
    Batch.objects.filter(pk=batch.pk).update(training_pipeline=prev.training_pipeline, min_alpha=prev.min_alpha,
                                             min_rater_kappa=prev.min_rater_kappa)
    lines, by_fingerprint, seen = [], {}, set()
    for item in selected:
        fp = pair_fingerprint(item["prompt"], item["a"]["text"], item["b"]["text"])
        if fp in seen:
            continue
        seen.add(fp)
        by_fingerprint[fp] = item
        lines.append(json.dumps({"prompt": item["prompt"], "response_a": item["a"]["text"], "response_b": item["b"]["text"]}))
    if not lines:
        raise DomainError("No pair could be built: every candidate pair had identical or empty answers.")
    pairs_import(batch=batch, lines=lines, actor=rnd.created_by)
    round_pairs = []
    for pair in Pair.objects.filter(batch=batch).only("id", "fingerprint"):
        item = by_fingerprint[pair.fingerprint]
        round_pairs.append(RoundPair(
            round=rnd, pair=pair, rule=item["rule"], response_a_id=item["a"].get("response"), response_b_id=item["b"].get("response"),
            role_a=item.get("role_a", ""), role_b=item.get("role_b", ""), model_a=item.get("model_a", ""), model_b=item.get("model_b", ""),
            rm_prob_b=item.get("rm_prob_b"), anchor_of_id=item.get("anchor_of")))
    RoundPair.objects.bulk_create(round_pairs)
    rnd.batch, rnd.status, rnd.finished_at = batch, RoundStatus.READY, timezone.now()
    rnd.save(update_fields=["batch", "status", "finished_at"])
    rules: dict[str, int] = {}
    for rp in round_pairs:
        rules[rp.rule] = rules.get(rp.rule, 0) + 1
    audit_record(actor=None, action="round.ready", obj=rnd, batch=batch, data={"pairs": len(round_pairs), "rules": rules})
    return batch
