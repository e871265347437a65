"""Adjudication pages, one set for everyone who may settle a dispute: admins (the agreement
report links here) and senior physicians holding profile.can_adjudicate. The list shows the
disputed pairs of a batch; the pair page puts every rater's judgment side by side above the
decision form. Reads and the write go through annotation.adjudication (selectors, services)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from annotation.labeling import selectors
from annotation.adjudication import selectors as adjudication_selectors
from annotation.adjudication import services as adjudication_services
from annotation.adjudication.selectors import adjudication_batches, pair_for_adjudicator
from annotation.errors import DomainError, NotFound

from .access import adjudicator_required
from .dashboard_views import nav_context
from .forms import AdjudicationForm
from .markdown import markdown_to_safe_html
from .views import label_words

PAGE_SIZE = 25
STATUS_WORDS = (("open", "Not yet adjudicated"), ("adjudicated", "Adjudicated"), ("all", "All disputes"))


def _batches_for(user):
    """The batches whose disputes this user may settle (the rule lives in annotation.adjudication)."""
    return selectors.batches_with_progress().filter(pk__in=adjudication_batches(user=user).values("pk"))


def _pair_for(user, pair_id: int):
    """The pair, or 404 when it does not exist or lies outside the batches this user may settle."""
    try:
        return pair_for_adjudicator(pair_id=pair_id, user=user)
    except NotFound:
        raise Http404("No such pair among the batches you adjudicate.")


def _safe_next(request) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return None


def pair_url(pair_id: int, *, back: str | None = None) -> str:
    """The adjudication page of a pair; `back` is where recording the decision returns to."""
    url = reverse("adjudicate-pair", args=[pair_id])
    return f"{url}?{urlencode({'next': back})}" if back else url


@adjudicator_required
def disputes(request):
    batches = list(_batches_for(request.user))
    wanted = request.GET.get("batch")
    batch = next((b for b in batches if str(b.pk) == wanted), batches[0] if batches else None)
    status = request.GET.get("status")
    status = status if status in dict(STATUS_WORDS) else "open"
    page = request.GET.get("page")
    page = int(page) if page and page.isdigit() and int(page) > 0 else 1
    listing = None
    if batch is not None:
        listing = adjudication_selectors.batch_disputes_list(batch=batch, status=status, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    here = request.get_full_path()
    query = {"batch": batch.pk if batch else "", "status": status}
    return render(request, "frontend/adjudication/disputes.html", nav_context(
        "adjudicate", batches=batches, batch=batch, status=status, statuses=STATUS_WORDS, disputes=listing,
        back=here, page=page,
        prev_url=f"?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
        next_url=f"?{urlencode({**query, 'page': page + 1})}" if listing and listing["count"] > page * PAGE_SIZE else None,
    ))


def _comparison_rows(detail: dict) -> list[dict]:
    """One row per aspect, one cell per rater: the side-by-side table of the pair page. `kind`
    tells the template how to show a cell (plain text, emphasised, pre-wrapped, span list)."""
    judgments = detail["judgments"]

    def row(title, cell, kind="text"):
        return {"title": title, "kind": kind, "cells": [cell(j) for j in judgments]}

    def rating(key):
        return lambda j: j["criteria"][key]["label"] if isinstance(j["criteria"].get(key), dict) else "—"

    return [
        row("Preference", lambda j: j["preference"]["label"], "strong"),
        row("Shown first (left)", lambda j: j["shown_left"]),
        # Criteria nobody rated would only add rows of dashes.
        *(row(c["label"], rating(c["key"])) for c in detail["rubric"] if any(c["key"] in j["criteria"] for j in judgments)),
        *(row(f"Flags on {side.upper()}", lambda j, side=side: ", ".join(map(label_words, j["flags"][side])) or "—")
          for side in ("a", "b")),
        row("Safety", _safety_words),
        row("Error spans", lambda j: [
            {"side": s["response"].upper(), "type": s["type"], "label": label_words(s["type"]), "text": s.get("text", "")}
            for s in j["error_spans"] or []
        ], "spans"),
        row("Rationale", lambda j: j["rationale"] or "—", "pre"),
        row("Time spent", lambda j: f"{round(j['time_spent_ms'] / 1000)} s" if j["time_spent_ms"] is not None else "—"),
    ]


def _safety_words(j: dict) -> str:
    vetoes = [words for on, words in ((j["both_unacceptable"], "Both unacceptable"), (j["a_unsafe"], "A unsafe"),
                                      (j["b_unsafe"], "B unsafe")) if on]
    if not vetoes:
        return "No veto"
    return f"{', '.join(vetoes)} (harm {j['harm_severity']})"


def _highlights(detail: dict) -> list[dict]:
    """Each response with every rater's error spans, for spans.js to mark up."""
    out = []
    for side in ("a", "b"):
        text = detail[side]["text"]
        spans = [{"start": s["start"], "end": s["end"], "type": s["type"], "label": f"{j['rater']}: {label_words(s['type'])}"}
                 for j in detail["judgments"] for s in j["error_spans"] or [] if s.get("response") == side]
        out.append({"side": side, "text": text, "html": markdown_to_safe_html(text), "spans": spans})
    return out


@adjudicator_required
def pair(request, pair_id: int):
    the_pair = _pair_for(request.user, pair_id)
    back = _safe_next(request)
    latest = the_pair.adjudications.order_by("-created_at", "-id").first()
    initial = {"preference": latest.preference, "a_unsafe": latest.a_unsafe, "b_unsafe": latest.b_unsafe} if latest else None
    form = AdjudicationForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            adjudication_services.adjudication_record(pair=the_pair, decided_by=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Adjudication of pair {the_pair.pk} recorded; exports will use it.")
            return redirect(back or f"{reverse('adjudicate')}?{urlencode({'batch': the_pair.batch_id})}")
    detail = adjudication_selectors.adjudication_detail(pair=the_pair)
    return render(request, "frontend/adjudication/pair.html", nav_context(
        "adjudicate", detail=detail, form=form, back=back,
        raters=detail["judgments"], rows=_comparison_rows(detail), highlights=_highlights(detail),
        prompt_html=markdown_to_safe_html(detail["prompt"]),
    ), status=400 if form.errors else 200)
