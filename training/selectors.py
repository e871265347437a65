"""Reads of the training domain, shaped for the API and the dashboard pages:

- training_run_list(...)            runs, newest first, filterable (runs list page)
- training_run_get(run_id=)         one run or NotFound
- training_run_metric_series(run=)  {metric: [[step, value], ...]} incl. the chart series
                                    loss / accuracy / reward / kl / length
- training_run_previous(run=)       the previous finished run of the same kind on the same data
- training_run_compare(run=)        its final metrics next to the previous run's, with deltas
- training_run_detail(run=)         everything the run page shows, in one dict
- training_pipeline_runs(pipeline_id=)  the chain a run belongs to"""

from __future__ import annotations

from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber

from annotation.errors import NotFound

from .evaluation import KL_KEYS, LENGTH_KEYS, REWARD_KEYS, metrics_compare, policy_monitor_flags
from .models import RunKind, RunStatus, TrainingMetric, TrainingRun

# Chart series -> the names trainers log it under, first match wins.
CHART_SERIES = {
    "loss": ("loss", "loss/policy_avg"),
    "accuracy": ("eval_accuracy", "accuracy", "eval_rewards/accuracies", "rewards/accuracies"),
    "reward": REWARD_KEYS + ("eval_margin", "margin"),
    "kl": KL_KEYS,
    "length": LENGTH_KEYS,
}


def training_run_list(
    *, status: str | None = None, kind: str | None = None, batch_id: int | None = None,
    export_id: int | None = None, pipeline_id: int | None = None,
) -> QuerySet[TrainingRun]:
    qs = TrainingRun.objects.select_related("export", "export__batch", "pipeline", "created_by").order_by("-created_at", "-id")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if batch_id is not None:
        qs = qs.filter(export__batch_id=batch_id)
    if export_id is not None:
        qs = qs.filter(export_id=export_id)
    if pipeline_id is not None:
        qs = qs.filter(pipeline_id=pipeline_id)
    return qs


def training_run_get(*, run_id: int) -> TrainingRun:
    run = training_run_list().filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"Training run {run_id} does not exist.")
    return run


def training_run_metric_points(*, run: TrainingRun) -> list[dict]:
    return [{"step": step, **values} for step, values in TrainingMetric.objects.filter(run=run).values_list("step", "values")]


def training_run_metric_series(*, run: TrainingRun, points: list[dict] | None = None) -> dict[str, list[list[float]]]:
    """Every logged metric as [[step, value], ...], plus the dashboard's canonical chart series."""
    points = training_run_metric_points(run=run) if points is None else points
    series: dict[str, list[list[float]]] = {}
    for point in points:
        for key, value in point.items():
            if key != "step" and isinstance(value, (int, float)):
                series.setdefault(key, []).append([point["step"], value])
    charts = {}
    for chart, keys in CHART_SERIES.items():
        charts[chart] = next((series[k] for k in keys if k in series), [])
    return {"charts": charts, "all": series}


def training_run_previous(*, run: TrainingRun) -> TrainingRun | None:
    """The newest earlier finished run of the same kind on the same data: the same export
    snapshot if there is one, else an earlier snapshot of the same batch."""
    earlier = (
        TrainingRun.objects.filter(kind=run.kind, status=RunStatus.SUCCEEDED, created_at__lte=run.created_at)
        .exclude(pk=run.pk).order_by("-created_at", "-id")
    )
    return earlier.filter(export_id=run.export_id).first() or earlier.filter(export__batch_id=run.export.batch_id).first()


def training_run_compare(*, run: TrainingRun) -> dict:
    previous = training_run_previous(run=run)
    if previous is None:
        return {"previous_run": None, "metrics": {}}
    return {
        "previous_run": previous.pk,
        "same_export": previous.export_id == run.export_id,
        "metrics": metrics_compare(run.final_metrics or {}, previous.final_metrics or {}),
    }


def training_run_detail(*, run: TrainingRun) -> dict:
    points = training_run_metric_points(run=run)
    detail = {
        "metrics": training_run_metric_series(run=run, points=points),
        "comparison": training_run_compare(run=run),
        "pipeline": [
            {"id": r.pk, "kind": r.kind, "status": r.status, "stage": r.stage, "parent": r.parent_id}
            for r in training_pipeline_runs(pipeline_id=run.pipeline_id)
        ],
    }
    if run.kind != RunKind.REWARD_MODEL and run.kind != RunKind.DPO:
        limit = float(run.config.get("kl_target") or 6.0)
        max_len = run.config.get("response_length") or run.config.get("max_completion_length")
        detail["monitors"] = policy_monitor_flags(points, kl_limit=limit, max_length=max_len)
    return detail


def training_pipeline_runs(*, pipeline_id: int) -> QuerySet[TrainingRun]:
    return TrainingRun.objects.filter(pipeline_id=pipeline_id).order_by("stage", "id")


def training_runs_recent(*, limit: int = 5) -> list[TrainingRun]:
    """The newest training runs, for the dashboard's overview."""
    return list(training_run_list()[:limit])


def training_runs_latest_by_batch(*, batch_ids: list[int]) -> dict[int, TrainingRun]:
    """Each batch's newest training run (through its export), in one query. A window, not DISTINCT
    ON, which only PostgreSQL has (the demo runs on SQLite)."""
    newest = Window(RowNumber(), partition_by=F("export__batch_id"), order_by=[F("created_at").desc(), F("id").desc()])
    rows = (TrainingRun.objects.filter(export__batch_id__in=batch_ids).annotate(newest=newest).filter(newest=1)
            .select_related("export").only("id", "kind", "status", "created_at", "export__batch_id"))
    return {run.export.batch_id: run for run in rows}
