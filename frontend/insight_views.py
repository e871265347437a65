"""Dashboard pages over agreement reports and adjudication (annotation.agreement.services /
annotation.adjudication), exports (annotation.exports.services) and training runs
(training.selectors / training.services)."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.adjudication import selectors as adjudication_selectors

from annotation.agreement import services as agreement_reports

from annotation.exports import services as export_services

from annotation.labeling import selectors
from training import selectors as training_selectors
from training import services as training_services
from annotation.errors import DomainError

from . import adjudication_views, charts
from .access import admin_required
from .dashboard_views import nav_context
from .forms import ExportCreateForm, RetrainForm


# ---------------------------------------------------------------- agreement and adjudication

LEVELS = (("three", "Three classes (1 better / tie / 2 better)"), ("five", "Five-point scale"), ("binary", "Binary (ties dropped)"))


@admin_required
def agreement(request, batch_id: int):
    batch = selectors.batch_get(batch_id=batch_id)
    level = request.GET.get("level") or "three"
    if level not in dict(LEVELS):
        level = "three"
    pair_id = request.GET.get("pair")
    if pair_id and pair_id.isdigit():
        # Old links adjudicated inline here; the one adjudication page now serves admins and physicians alike.
        return redirect(adjudication_views.pair_url(int(pair_id), back=reverse("dashboard-agreement", args=[batch.pk])))
    try:
        report, progress = agreement_reports.agreement_report_or_queue(batch=batch, level=level)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard-batch", batch_id=batch.pk)
    if report is None:
        messages.info(request, f"The agreement report of “{batch.name}” ({progress['judgments']:,} judgments) is being computed "
                               f"in the background since {progress['since'][:19].replace('T', ' ')} UTC; open it again in a minute.")
        return redirect("dashboard-batch", batch_id=batch.pk)
    heatmap = agreement_reports.agreement_heatmap(report=report)
    disputes = adjudication_selectors.batch_disputes_list(batch=batch, status="all", limit=25)
    return render(request, "frontend/dashboard/agreement.html", nav_context(
        "batches", batch=batch, report=report, level=level, levels=LEVELS,
        heatmap=heatmap, heatmap_svg=charts.heatmap_svg(heatmap),
        rater_svg=charts.rater_bars_svg(report.get("per_rater") or [], threshold=batch.min_rater_kappa),
        distribution_svg=charts.distribution_svg(report.get("preference_distribution") or {}),
        disputes=disputes, back=request.get_full_path() + "#disputes",
    ))


@admin_required
def agreement_trend(request):
    points = agreement_reports.agreement_trend()
    for p in points:
        # The date agreement_trend orders by, and which one it is.
        p["date_kind"] = "closed" if p["closed_at"] else "opened" if p["opened_at"] else "created"
        p["date"] = p[f"{p['date_kind']}_at"]
    return render(request, "frontend/dashboard/agreement_trend.html", nav_context(
        "agreement", points=points, trend_svg=charts.trend_svg(points),
    ))


# ---------------------------------------------------------------- exports

@admin_required
def exports(request):
    batch_id = request.GET.get("batch")
    batch_id = int(batch_id) if batch_id and batch_id.isdigit() else None
    form = ExportCreateForm(request.POST or None, initial={"batch": batch_id})
    if request.method == "POST" and form.is_valid():
        try:
            snapshot = export_services.export_create(batch=form.cleaned_data["batch"], params=form.params(), created_by=request.user)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Export v{snapshot.version} of “{snapshot.batch.name}” is ready.")
            return redirect(reverse("dashboard-exports") + f"?batch={snapshot.batch_id}")
    snapshots = export_services.export_list(batch_id=batch_id).select_related("batch", "created_by")[:100]
    return render(request, "frontend/dashboard/exports.html", nav_context(
        "exports", snapshots=snapshots, form=form, batch_id=batch_id, can_create=form.fields["batch"].queryset.exists(),
    ), status=400 if form.errors else 200)


# ---------------------------------------------------------------- training

@admin_required
def training_runs(request):
    batch_id = request.GET.get("batch")
    batch_id = int(batch_id) if batch_id and batch_id.isdigit() else None
    form = RetrainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            runs = training_services.training_start(export_id=form.cleaned_data["export"].pk, pipeline=form.cleaned_data["pipeline"],
                                       base_model=form.cleaned_data["base_model"], created_by=request.user)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Queued {len(runs)} run{'s' if len(runs) != 1 else ''} ({form.cleaned_data['pipeline']}).")
            return redirect("dashboard-training-run", run_id=runs[0].pk)
    runs = training_selectors.training_run_list(batch_id=batch_id)[:100]
    return render(request, "frontend/dashboard/training_runs.html", nav_context(
        "training", runs=runs, form=form, batch_id=batch_id, can_start=form.fields["export"].queryset.exists(),
    ), status=400 if form.errors else 200)


@admin_required
def training_run(request, run_id: int):
    run = training_selectors.training_run_get(run_id=run_id)
    return render(request, "frontend/dashboard/training_run.html", nav_context(
        "training", run=run, detail=training_selectors.training_run_detail(run=run),
    ))


@require_POST
@admin_required
def training_run_cancel(request, run_id: int):
    try:
        run = training_services.run_cancel(run_id=run_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Run {run.pk}: cancellation requested ({run.status}).")
    return redirect("dashboard-training-run", run_id=run_id)
