"""Physician pages: the queue, the labeling workspace and its small JSON endpoint, the review
of one's own judgments and their correction. Views validate input and call one selector or
service."""

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_GET

from annotation.labeling import selectors
from annotation.labeling.apis import assignment_payload
from annotation.labeling.assignment import pair_lease_next, preference_to_display, slot_to_side
from annotation.errors import DomainError
from annotation.models import ERROR_SPAN_TYPES, FLAG_CHOICES, BatchState, HarmSeverity, Role
from annotation import rules
from annotation.permissions import user_role

from .access import active_user_required, physician_required
from .markdown import markdown_to_safe_html

PREFERENCE_CHOICES = [(p.display, p.key, p.words) for p in rules.PREFERENCES]
PREFERENCE_WORDS = {value: words for value, _, words in PREFERENCE_CHOICES}
FLAG_KEYS = {"hallucination": "h", "unsafe_advice": "u", "outdated_guidance": "o"}


def label_words(name: str) -> str:
    return name.replace("_", " ").capitalize()


def favicon(request):
    """Browsers ask for /favicon.ico whatever the page links; send them to the static icon (resolved
    per request: the production manifest exists only after collectstatic)."""
    return redirect(static("frontend/favicon.svg"), permanent=True)


def home(request):
    if not request.user.is_authenticated:
        return redirect("login")
    role = user_role(request.user)
    if role == Role.ADMIN:
        return redirect("dashboard")
    return queue(request)


@physician_required
def queue(request):
    recent = selectors.judgments_visible_to(user=request.user).filter(is_current=True)[:8]
    return render(request, "frontend/queue.html", {
        "queue": selectors.physician_queue(user=request.user),
        "recent": [(j, PREFERENCE_WORDS[preference_to_display(j.preference, a_shown_first=j.a_shown_first)]) for j in recent],
    })


def _judgment_form_context(batch) -> dict:
    """What frontend/_judgment_form.html needs, for labeling and for corrections alike."""
    return {
        "batch": batch,
        "preferences": PREFERENCE_CHOICES,
        "preference_vocabulary": rules.preferences_for_page(),
        "flags": [(name, FLAG_KEYS[name], label_words(name)) for name in FLAG_CHOICES],
        "span_types": [(i, name, label_words(name)) for i, name in enumerate(ERROR_SPAN_TYPES, 1)],
        "severities": HarmSeverity.choices,
    }


@physician_required
def label(request, batch_id: int):
    return render(request, "frontend/label.html", _judgment_form_context(selectors.batch_labelable_by(user=request.user, batch_id=batch_id)))


def _my_progress(*, user, batch_id: int) -> dict:
    for row in selectors.physician_queue(user=user):
        if row["batch"].pk == batch_id:
            return {"batch": row["progress"], "mine_done": row["mine_done"], "left_for_me": row["left_for_me"],
                    "mine_calibration": row["mine_calibration"]}
    return {"batch": None, "mine_done": 0, "left_for_me": 0, "mine_calibration": 0}


@require_GET
@physician_required
def next_pair_json(request, batch_id: int):
    """The API's next-pair payload plus sanitised HTML of each text and the progress bars,
    so the page never renders untrusted Markdown itself."""
    prefer = request.GET.get("pair", "")
    try:
        selectors.batch_labelable_by(user=request.user, batch_id=batch_id)
        assignment = pair_lease_next(rater=request.user, batch_id=batch_id,
                                     prefer_pair_id=int(prefer) if prefer.isdigit() else None)
    except DomainError as exc:
        return JsonResponse({"detail": exc.message, "code": exc.code}, status=exc.status_code)
    progress = _my_progress(user=request.user, batch_id=batch_id)
    if assignment is None:
        return JsonResponse({"assignment": None, "progress": progress})
    return JsonResponse({"assignment": _workspace_payload(assignment), "progress": progress})


def _workspace_payload(assignment) -> dict:
    payload = assignment_payload(assignment)
    payload["prompt_html"] = markdown_to_safe_html(payload["prompt"])
    for response in payload["responses"]:
        response["html"] = markdown_to_safe_html(response["text"])
    return payload


@active_user_required
def judgment_review(request, judgment_id: int):
    """One of my judgments, in the display order I saw, with my error spans highlighted."""
    judgment = selectors.judgments_visible_to(user=request.user).select_related(
        "pair__prompt", "pair__completion_a", "pair__completion_b").filter(pk=judgment_id).first()
    if judgment is None:
        raise Http404("No such judgment of yours.")
    pair, shown_a = judgment.pair, judgment.a_shown_first
    sides = ("a", "b") if shown_a else ("b", "a")
    texts = {"a": pair.completion_a.text, "b": pair.completion_b.text}
    flags = judgment.flags or {}
    unsafe = {"a": judgment.a_unsafe, "b": judgment.b_unsafe}
    responses = []
    for slot, side in enumerate(sides, 1):
        spans = [{"start": s["start"], "end": s["end"], "type": s["type"]}
                 for s in judgment.error_spans or [] if s.get("response") == side]
        responses.append({
            "slot": slot, "text": texts[side], "html": markdown_to_safe_html(texts[side]), "spans": spans,
            "flags": [label_words(f) for f in flags.get(side, [])], "unsafe": unsafe[side],
        })
    criteria = [(c["label"], PREFERENCE_WORDS[preference_to_display(judgment.criteria[c["key"]], a_shown_first=shown_a)])
                for c in judgment.batch.rubric if c["key"] in (judgment.criteria or {})]
    revisions = list(selectors.judgments_visible_to(user=request.user).filter(assignment_id=judgment.assignment_id)
                     .order_by("-revision"))
    own = judgment.rater_id == request.user.pk and user_role(request.user) == Role.PHYSICIAN
    return render(request, "frontend/judgment.html", {
        "judgment": judgment,
        "preference": PREFERENCE_WORDS[preference_to_display(judgment.preference, a_shown_first=shown_a)],
        "prompt_html": markdown_to_safe_html(pair.prompt.text),
        "responses": responses,
        "criteria": criteria,
        "revisions": [(r, PREFERENCE_WORDS[preference_to_display(r.preference, a_shown_first=r.a_shown_first)]) for r in revisions],
        "current": next((r for r in revisions if r.is_current), judgment),
        "can_correct": own and judgment.is_current and judgment.batch.state == BatchState.OPEN,
        "batch_open": judgment.batch.state == BatchState.OPEN,
    })


def _prefill(judgment) -> dict:
    """A stored judgment in the display terms of its rater's screen, to pre-fill the form."""
    shown_a = judgment.a_shown_first
    slot_of = {slot_to_side(slot, a_shown_first=shown_a): slot for slot in (1, 2)}
    return {
        "preference": preference_to_display(judgment.preference, a_shown_first=shown_a),
        "criteria": {key: preference_to_display(value, a_shown_first=shown_a)
                     for key, value in (judgment.criteria or {}).items() if isinstance(value, int)},
        "flags": {str(slot_of[side]): list(names) for side, names in (judgment.flags or {}).items() if side in slot_of},
        "unsafe": {str(slot_of["a"]): judgment.a_unsafe, str(slot_of["b"]): judgment.b_unsafe},
        "both_unacceptable": judgment.both_unacceptable,
        "harm_severity": judgment.harm_severity,
        "rationale": judgment.rationale,
        "time_spent_ms": judgment.time_spent_ms,
        "error_spans": [{"response": slot_of[s["response"]], "start": s["start"], "end": s["end"], "type": s["type"],
                         "text": s.get("text", "")} for s in judgment.error_spans or [] if s.get("response") in slot_of],
    }


@physician_required
def judgment_correct(request, judgment_id: int):
    """The labeling form pre-filled with one of my judgments; workspace.js posts the correction to
    the judgment API with a fresh idempotency key, which stores it as the next revision."""
    judgment = selectors.judgments_visible_to(user=request.user).filter(rater=request.user, pk=judgment_id).select_related(
        "assignment__batch", "assignment__pair__prompt", "assignment__pair__completion_a", "assignment__pair__completion_b",
    ).first()
    if judgment is None:
        raise Http404("No such judgment of yours.")
    if not judgment.is_current:
        current = selectors.judgments_visible_to(user=request.user).filter(
            assignment_id=judgment.assignment_id, is_current=True).first()
        if current is not None:
            return redirect("judgment-correct", judgment_id=current.pk)
    if judgment.batch.state != BatchState.OPEN:
        messages.error(request, f"“{judgment.batch.name}” is {judgment.batch.state}: its judgments can no longer be corrected.")
        return redirect("judgment-review", judgment_id=judgment.pk)
    return render(request, "frontend/correct.html", {
        **_judgment_form_context(judgment.batch),
        "judgment": judgment,
        "correcting": True,
        "review_url": reverse("judgment-review", args=[0]).replace("/0/", "/{id}/"),
        "correction": {"assignment": _workspace_payload(judgment.assignment), "prefill": _prefill(judgment)},
    })
