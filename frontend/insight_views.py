"""Dashboard pages over capabilities built in other modules: agreement reports and
adjudication, exports, training runs. Filled in once those modules exist; until then each
page says the capability is not available yet (see integrations.py)."""

from django.shortcuts import render

from .access import admin_required
from .integrations import available_sections


def _not_available(request, title: str, active: str):
    return render(request, "frontend/dashboard/not_available.html",
                  {"active": active, "sections": available_sections(), "title": title})


@admin_required
def agreement(request, batch_id: int):
    return _not_available(request, "Agreement report", "batches")


@admin_required
def exports(request):
    return _not_available(request, "Exports", "exports")


@admin_required
def training_runs(request):
    return _not_available(request, "Training runs", "training")


@admin_required
def training_run(request, run_id: int):
    return _not_available(request, "Training run", "training")
