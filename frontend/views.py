"""Physician pages: the queue, the labeling workspace and its small JSON endpoint, and the
review of one's own judgments. Views validate input and call one selector or service."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from annotation import selectors
from annotation.apis import assignment_payload
from annotation.assignment import preference_to_display, pair_lease_next
from annotation.errors import DomainError
from annotation.models import ERROR_SPAN_TYPES, FLAG_CHOICES, HarmSeverity, Role
from annotation.permissions import user_role

from .access import physician_required
from .markdown import markdown_to_safe_html

PREFERENCE_CHOICES = [
    ("1>>2", "1", "Response 1 much better"),
    ("1>2", "2", "Response 1 better"),
    ("=", "3", "About the same"),
    ("2>1", "4", "Response 2 better"),
    ("2>>1", "5", "Response 2 much better"),
]
PREFERENCE_WORDS = {value: words for value, _, words in PREFERENCE_CHOICES}
FLAG_KEYS = {"hallucination": "h", "unsafe_advice": "u", "outdated_guidance": "o"}


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


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


@physician_required
def label(request, batch_id: int):
    batch = selectors.batch_get(batch_id=batch_id)
    return render(request, "frontend/label.html", {
        "batch": batch,
        "preferences": PREFERENCE_CHOICES,
        "flags": [(name, FLAG_KEYS[name], _label(name)) for name in FLAG_CHOICES],
        "span_types": [(i, name, _label(name)) for i, name in enumerate(ERROR_SPAN_TYPES, 1)],
        "severities": HarmSeverity.choices,
    })


def _my_progress(*, user, batch_id: int) -> dict:
    for row in selectors.physician_queue(user=user):
        if row["batch"].pk == batch_id:
            return {"batch": row["progress"], "mine_done": row["mine_done"], "left_for_me": row["left_for_me"]}
    return {"batch": None, "mine_done": 0, "left_for_me": 0}


@require_GET
@physician_required
def next_pair_json(request, batch_id: int):
    """The API's next-pair payload plus sanitised HTML of each text and the progress bars,
    so the page never renders untrusted Markdown itself."""
    try:
        assignment = pair_lease_next(rater=request.user, batch_id=batch_id)
    except DomainError as exc:
        return JsonResponse({"detail": exc.message, "code": exc.code}, status=exc.status_code)
    progress = _my_progress(user=request.user, batch_id=batch_id)
    if assignment is None:
        return JsonResponse({"assignment": None, "progress": progress})
    payload = assignment_payload(assignment)
    payload["prompt_html"] = markdown_to_safe_html(payload["prompt"])
    for response in payload["responses"]:
        response["html"] = markdown_to_safe_html(response["text"])
    return JsonResponse({"assignment": payload, "progress": progress})


@login_required
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
            "flags": [_label(f) for f in flags.get(side, [])], "unsafe": unsafe[side],
        })
    criteria = [(c["label"], PREFERENCE_WORDS[preference_to_display(judgment.criteria[c["key"]], a_shown_first=shown_a)])
                for c in judgment.batch.rubric if c["key"] in (judgment.criteria or {})]
    return render(request, "frontend/judgment.html", {
        "judgment": judgment,
        "preference": PREFERENCE_WORDS[preference_to_display(judgment.preference, a_shown_first=shown_a)],
        "prompt_html": markdown_to_safe_html(pair.prompt.text),
        "responses": responses,
        "criteria": criteria,
    })
