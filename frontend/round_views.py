"""The rounds page: every round of the RLHF loop with its figures and a chart across rounds; start
the next round, follow, cancel or resume its generation, and (DEMO rounds only) label it with the
simulated raters. Views call training.rounds services and selectors only."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.errors import DomainError
from annotation.labeling.services import batch_open
from annotation.models import BatchState
from training.models import RoundStatus
from training.rounds import selectors as round_selectors
from training.rounds import services as round_services

from . import charts
from .access import admin_required
from .dashboard_views import nav_context
from .forms import RoundCreateForm


def _chart_points(rows: list[dict]) -> list[dict]:
    points = []
    for row in rows:
        m = row["measures"]
        if not m:
            continue
        h2h, rm = m["head_to_head"], m["rm_vs_physicians"]
        points.append({"label": f"Round {row['round'].number}", "win_rate": h2h["rate"], "win_rate_ci": (h2h["low"], h2h["high"]),
                       "rm_agreement": rm["rate"], "ceiling": rm["ceiling"]})
    return points


@admin_required
def rounds(request):
    form = RoundCreateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        v = form.cleaned_data
        try:
            rnd = round_services.round_create(
                created_by=request.user, source_run_id=v["source_run"].pk if v["source_run"] else None,
                source_model=v["source_model"] or "", previous_batch_id=v["previous_batch"].pk if v["previous_batch"] else None,
                use_previous_prompts=v["use_previous_prompts"], prompt_lines=list(v["prompts_file"]) if v["prompts_file"] else None,
                options=form.options(),
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Round {rnd.number} is queued: {rnd.responses_total} responses to sample on the GPU queue.")
            return redirect("dashboard-rounds")
    overview = round_selectors.rounds_overview()
    generating = any(r["round"].status in (RoundStatus.QUEUED, RoundStatus.GENERATING) for r in overview["rows"])
    return render(request, "frontend/dashboard/rounds.html", nav_context(
        "rounds", rows=overview["rows"], ratings=overview["ratings"], chart=charts.rounds_svg(_chart_points(overview["rows"])),
        form=form, refresh=generating,
    ), status=400 if form.errors else 200)


@require_POST
@admin_required
def round_cancel(request, round_id: int):
    try:
        rnd = round_services.round_cancel(round_id=round_id, actor=request.user)
        messages.success(request, f"Round {rnd.number}: cancel requested; responses generated so far are kept.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard-rounds")


@require_POST
@admin_required
def round_resume(request, round_id: int):
    try:
        rnd = round_services.round_resume(round_id=round_id, actor=request.user)
        messages.success(request, f"Round {rnd.number} is queued again; it keeps its {rnd.responses_done} responses.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("dashboard-rounds")


@require_POST
@admin_required
def round_simulate(request, round_id: int):
    """DEMO rounds only: open the draft batch and let the three simulated raters label it."""
    from annotation.demo.load import favours_on_topic, simulate_raters

    rnd = round_selectors.round_get(round_id=round_id)
    if not rnd.is_demo or rnd.batch is None:
        messages.error(request, "Simulated raters label DEMO rounds only, once their draft batch exists.")
        return redirect("dashboard-rounds")
    try:
        if rnd.batch.state == BatchState.DRAFT:
            batch_open(batch_id=rnd.batch_id, actor=request.user)
        written = simulate_raters(batch=rnd.batch, favours_a=favours_on_topic, seed=rnd.number)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"DEMO: the simulated raters wrote {written} judgments on “{rnd.batch.name}”. Close the batch to train on them.")
    return redirect("dashboard-rounds")
