"""Admin dashboard pages: batches, raters, audit trail. Every view is admin-only (403 for a
physician), validates a form and calls one selector or service; domain errors become a
message on the page, never a stack trace."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.agreement import services as agreement_reports
from annotation.labeling import selectors

from annotation.labeling import services
from annotation.errors import DomainError, ImportRejected
from annotation.labeling.importing import import_inline_max_lines, import_job_create, pairs_import

from training import selectors as training_selectors

from .access import admin_required
from .forms import AuditFilterForm, BatchCloseForm, BatchCreateForm, PairsUploadForm, RaterActiveForm


def nav_context(active: str, **extra) -> dict:
    """What the dashboard layout needs: the active tab."""
    return {"active": active, **extra}


@admin_required
def batches(request):
    form = BatchCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        v = form.cleaned_data
        try:
            batch = services.batch_create(
                name=v["name"], specialty_name=v["specialty"].name, raters_per_pair=v["raters_per_pair"],
                rationale_policy=v["rationale_policy"], calibration_rate=v["calibration_rate"],
                lease_seconds=v["lease_minutes"] * 60, description=v["description"], created_by=request.user,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Created draft batch “{batch.name}”. Upload its pairs next.")
            return redirect("dashboard-batch", batch_id=batch.pk)
    batches = list(selectors.batches_with_progress())
    ids = [b.pk for b in batches]
    gates = agreement_reports.batch_gates_stored(batches=batches)
    exports = selectors.batches_latest_export(batch_ids=ids)
    runs = training_selectors.training_runs_latest_by_batch(batch_ids=ids)
    rows = [{"batch": b, "progress": selectors.batch_progress(b), "gate": gates[b.pk], "export": exports.get(b.pk),
             "run": runs.get(b.pk)} for b in batches]
    return render(request, "frontend/dashboard/batches.html", {
        **nav_context("batches"), "rows": rows, "form": form, "overview": selectors.dashboard_overview(),
        "recent_runs": training_selectors.training_runs_recent(limit=5),
    }, status=400 if form.errors else 200)


def _batch_page(request, batch_id: int, *, upload_form=None, close_form=None, import_errors=None, status=200):
    batch = selectors.batch_with_progress(batch_id=batch_id)
    return render(request, "frontend/dashboard/batch_detail.html", {
        **nav_context("batches"),
        "batch": batch,
        "progress": selectors.batch_progress(batch),
        "pairs_short": services.batch_pairs_short(batch=batch),
        "upload_form": upload_form or PairsUploadForm(),
        "close_form": close_form or BatchCloseForm(),
        "import_errors": import_errors,
        "events": selectors.audit_events(batch_id=batch.pk)[:10],
        "import_jobs": selectors.import_jobs_recent(batch_id=batch.pk),
        "close_outcome": selectors.batch_close_outcome(batch=batch) if batch.state in ("closed", "exported") else None,
    }, status=status)


@admin_required
def batch_detail(request, batch_id: int):
    return _batch_page(request, batch_id)


@require_POST
@admin_required
def batch_upload(request, batch_id: int):
    form = PairsUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _batch_page(request, batch_id, upload_form=form, status=400)
    batch = selectors.batch_get(batch_id=batch_id)
    upload = form.cleaned_data["file"]
    if _line_count(upload) > import_inline_max_lines():
        try:
            job = import_job_create(batch=batch, content=upload, actor=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Import {job.pk} queued: it runs in the background; its progress shows below.")
        return redirect("dashboard-batch", batch_id=batch_id)
    try:
        # Iterating an UploadedFile yields its lines as bytes, streamed from disk for big files.
        created = pairs_import(batch=batch, lines=upload, actor=request.user)
    except ImportRejected as exc:
        return _batch_page(request, batch_id, upload_form=form, import_errors={"summary": exc.message, "lines": exc.errors},
                           status=400)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard-batch", batch_id=batch_id)
    messages.success(request, f"Imported {created} pair{'s' if created != 1 else ''}.")
    return redirect("dashboard-batch", batch_id=batch_id)


def _line_count(upload) -> int:
    """Lines of an uploaded file, read in chunks (it may sit on disk), then rewound."""
    count, last = 0, b"\n"
    for chunk in upload.chunks():
        count += chunk.count(b"\n")
        last = chunk[-1:] or last
    upload.seek(0)
    return count + (last != b"\n")


@require_POST
@admin_required
def batch_open(request, batch_id: int):
    try:
        batch = services.batch_open(batch_id=batch_id, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"“{batch.name}” is open: physicians of {batch.specialty} can label it now.")
    return redirect("dashboard-batch", batch_id=batch_id)


@require_POST
@admin_required
def batch_close(request, batch_id: int):
    form = BatchCloseForm(request.POST)
    if not form.is_valid():
        return _batch_page(request, batch_id, close_form=form, status=400)
    try:
        batch = services.batch_close(batch_id=batch_id, actor=request.user, force=form.cleaned_data["force"],
                                     override_reason=form.cleaned_data["override_reason"].strip())
    except DomainError as exc:
        form.add_error(None, exc.message)
        return _batch_page(request, batch_id, close_form=form, status=409)
    outcome = selectors.batch_close_outcome(batch=batch)
    messages.success(request, f"“{batch.name}”: {outcome['message'] if outcome else 'closed.'}")
    return redirect("dashboard-batch", batch_id=batch_id)


@admin_required
def raters(request):
    profiles = selectors.raters_with_stats()
    return render(request, "frontend/dashboard/raters.html", {
        **nav_context("raters"), "rows": [(p, selectors.rater_mean_time_s(p)) for p in profiles],
    })


@require_POST
@admin_required
def rater_active(request, user_id: int):
    form = RaterActiveForm(request.POST)
    form.is_valid()
    user = selectors.user_get(user_id=user_id)
    is_active = form.cleaned_data.get("is_active", False)
    services.rater_set_active(user=user, is_active=is_active, actor=request.user)
    messages.success(request, f"{user.username} is now {'active' if is_active else 'deactivated: signed out everywhere, API tokens deleted, open leases released'}.")
    return redirect("dashboard-raters")


@admin_required
def audit(request):
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    events = selectors.audit_events(
        username=filters.get("user") or None, batch_id=filters.get("batch"),
        object_type=filters.get("object_type") or None, object_id=filters.get("object_id") or None,
        action=filters.get("action") or None,
    )
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "frontend/dashboard/audit.html", {
        **nav_context("audit"), "form": form, "page": page, "query": query.urlencode(),
    })
