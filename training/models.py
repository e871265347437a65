"""Training pipelines and runs. A pipeline is a small chain of runs built from one export
snapshot (e.g. reward_model -> ppo); each run is one Celery task on the gpu queue.

Rows hold state the workers report through the database (progress, heartbeat, metrics), so the
web process never needs to share a disk or a process with a GPU host. Behaviour lives in
services.py; nothing here has side effects."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class RunKind(models.TextChoices):
    REWARD_MODEL = "reward_model", "Reward model"
    PPO = "ppo", "PPO"
    DPO = "dpo", "DPO"
    GRPO = "grpo", "GRPO"
    RLOO = "rloo", "RLOO"


# The kinds that train a policy (what a round samples, what a policy run may start from).
POLICY_KINDS = (RunKind.PPO, RunKind.DPO, RunKind.GRPO, RunKind.RLOO)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
FINISHED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class TrainingPipeline(models.Model):
    """One launch: the spec (e.g. "reward_model>ppo") applied to one export snapshot."""

    class Trigger(models.TextChoices):
        BATCH_CLOSED = "batch_closed", "Batch closed"
        MANUAL = "manual", "Started by an admin"

    export = models.ForeignKey("annotation.ExportSnapshot", on_delete=models.PROTECT, related_name="training_pipelines")
    spec = models.CharField(max_length=64)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    # "batch_closed:<batch id>" for automatic launches: the unique constraint is what makes a
    # retried or concurrent close start training exactly once. Empty for manual (re)trains.
    trigger_key = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["trigger_key"], condition=~Q(trigger_key=""), name="training_pipeline_trigger_once"),
        ]

    def __str__(self) -> str:
        return f"pipeline {self.pk} ({self.spec})"


class TrainingRun(models.Model):
    pipeline = models.ForeignKey(TrainingPipeline, on_delete=models.CASCADE, related_name="runs")
    # Position in the pipeline spec (0 = first run); children start when their parent succeeds.
    stage = models.PositiveSmallIntegerField(default=0)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children",
                               help_text="The run this one builds on, e.g. the reward model a PPO run optimises.")
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    export = models.ForeignKey("annotation.ExportSnapshot", on_delete=models.PROTECT, related_name="training_runs")

    # The fully resolved hyper-parameters (defaults filled in), so a run can be reproduced.
    config = models.JSONField(default=dict)
    base_model = models.CharField(max_length=500, blank=True, help_text="Model id or path; empty means the demo model.")
    is_demo = models.BooleanField(default=False)
    # Says plainly what the run is built on when it is a demo (no clinical base model).
    note = models.TextField(blank=True)

    host = models.CharField(max_length=200, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.FloatField(default=0.0, help_text="0..1")
    current_step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)

    final_metrics = models.JSONField(default=dict, blank=True)
    # Storage prefix of the saved model (e.g. "training/12/model/"), readable by any host.
    artifact_path = models.CharField(max_length=500, blank=True)
    artifact_files = models.JSONField(default=list, blank=True)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The reaper scans running runs by heartbeat age.
            models.Index(fields=["status", "heartbeat_at"], name="training_run_reaper_idx"),
            models.Index(fields=["export", "kind", "status"], name="training_run_export_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class TrainingMetric(models.Model):
    """One logged point of a run (loss, accuracy, KL, length... at a step). Appending rows keeps
    progress writes cheap and lets the dashboard fetch a series without rewriting a big JSON blob."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metrics")
    step = models.PositiveIntegerField()
    values = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["step", "id"]
        indexes = [models.Index(fields=["run", "step"], name="training_metric_run_step_idx")]


# ---------------------------------------------------------------- rounds (training/rounds/)


class RoundStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    GENERATING = "generating", "Generating"
    READY = "ready", "Generated"  # the batch beside it says where labeling stands
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Round(models.Model):
    """One turn of the RLHF loop: responses sampled from a policy (and the models it is compared
    with), the pairs chosen from them for physicians, and the draft batch that holds those pairs.
    Which model wrote what, and what the reward model predicted, live here and on RoundPair - never
    on the batch's pairs or completions that physicians are served."""

    number = models.PositiveIntegerField(help_text="1 for the first batch built from a trained policy, then 2, 3...")
    status = models.CharField(max_length=16, choices=RoundStatus.choices, default=RoundStatus.QUEUED, db_index=True)
    # The policy to sample: a succeeded policy run, or a registered model (hub id or local path).
    source_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="rounds_sourced")
    source_model = models.CharField(max_length=500, blank=True)
    # The reward model that scores candidates and predicts each pair before it is labeled.
    reward_run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="rounds_scored")
    previous_batch = models.ForeignKey("annotation.Batch", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    previous_round = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    batch = models.OneToOneField("annotation.Batch", null=True, blank=True, on_delete=models.PROTECT, related_name="round")
    batch_name = models.CharField(max_length=200)
    # Validated options (training.rounds.services.ROUND_DEFAULTS): sampling, models, shares, n_pairs.
    options = models.JSONField(default=dict)
    # [{"text", "id"}]: the prompts to sample, fixed when the round is created.
    prompts = models.JSONField(default=list)
    # {"new": {"name", "checkpoint", "location"}, ...}: what each role resolved to.
    models_used = models.JSONField(default=dict, blank=True)
    is_demo = models.BooleanField(default=False)

    celery_task_id = models.CharField(max_length=64, blank=True)
    host = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    responses_total = models.PositiveIntegerField(default=0)
    responses_done = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    engine = models.CharField(max_length=200, blank=True, help_text="vLLM or transformers, and why.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"round {self.number} ({self.status})"

    @property
    def progress(self) -> float:
        return self.responses_done / self.responses_total if self.responses_total else 0.0


class GeneratedResponse(models.Model):
    """One sampled response, written as soon as it is generated so a resumed round keeps it."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="responses")
    prompt_index = models.PositiveIntegerField()
    sample_index = models.PositiveSmallIntegerField()
    role = models.CharField(max_length=16, help_text="new, previous or reference")
    model_name = models.CharField(max_length=500)
    checkpoint = models.CharField(max_length=500, blank=True, help_text="Training run artifact prefix, or the path/hub id.")
    sampling = models.JSONField(default=dict, help_text="temperature, top_p, max_new_tokens, engine")
    seed = models.BigIntegerField()
    text = models.TextField()
    reward_score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["round", "prompt_index", "role", "sample_index"], name="generated_response_once")]


class RoundPair(models.Model):
    """What the platform knows about a round's pair and physicians must not: the rule that chose it,
    the models behind its answers and the reward model's prediction, made before anyone labeled it."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="round_pairs")
    pair = models.OneToOneField("annotation.Pair", on_delete=models.CASCADE, related_name="round_pair")
    rule = models.CharField(max_length=16)
    response_a = models.ForeignKey(GeneratedResponse, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    response_b = models.ForeignKey(GeneratedResponse, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    role_a = models.CharField(max_length=16, blank=True)
    role_b = models.CharField(max_length=16, blank=True)
    model_a = models.CharField(max_length=500, blank=True)
    model_b = models.CharField(max_length=500, blank=True)
    # The reward model's probability that B is preferred (sigmoid of the score difference).
    rm_prob_b = models.FloatField(null=True, blank=True)
    # Anchors: the previous batch's pair this one repeats.
    anchor_of = models.ForeignKey("annotation.Pair", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
