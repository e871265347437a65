"""The workspace and dashboard in a real browser (Debian's chromium driven by Playwright).

Screenshots land in tests/screenshots/ for a person to look at."""

import os
import random
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from annotation.labeling.assignment import DISPLAY_PREFERENCES
from annotation.models import Assignment, BatchState, Judgment
from tests import factories

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
from playwright import sync_api as playwright_api  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
SHOTS = Path(__file__).resolve().parent.parent / "screenshots"
PASSWORD = "correct-horse-9"  # tests.factories.UserFactory

pytestmark = [
    pytest.mark.slow,
    # CI (and `make test`, which installs chromium) must run these; only a bare local run may skip.
    pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                       reason="needs Debian's chromium: apt-get install chromium"),
]


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The Content-Security-Policy forbids inline script: a page that still relied on one would
    # log a violation here instead of failing loudly.
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def sized_page(browser):
    """sized_page(width, height): a page in a fresh context at that viewport."""
    contexts, errors = [], []

    def make(width: int, height: int, **options):
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def login(page, live_server, username: str) -> None:
    page.goto(live_server.url + "/login/")
    page.focus("#id_username")  # autofocus too, but it can land after the load event
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login/" not in url)


def labeling_batch(physician, n_pairs: int):
    random.seed(11)  # pair_lease_next draws the display order from the module RNG
    batch = factories.BatchFactory(name="Chest pain triage", specialty=physician.profile.specialty,
                                   state=BatchState.OPEN, calibration_rate=0.0, raters_per_pair=2)
    factories.make_pair(batch, "I have **crushing chest pain** at rest for 20 minutes. What should I do?",
                        "Call emergency services now and chew 300 mg of aspirin unless you are allergic.\n\n"
                        "- Do not drive yourself\n- Unlock the door", "Rest for an hour and take 2 g of aspirin; see your GP next week.")
    factories.make_pairs(batch, n_pairs - 1)
    return batch


def wait_for_new_pair(page, previous: str | None) -> str:
    page.wait_for_function(
        "prev => { const f = document.getElementById('judgment-form');"
        " return !f.hidden && f.dataset.assignmentId && f.dataset.assignmentId !== prev; }", arg=previous)
    return page.locator("#judgment-form").get_attribute("data-assignment-id")


def test_physician_labels_three_pairs_by_keyboard_only(page, live_server, physician):
    batch = labeling_batch(physician, 3)
    login(page, live_server, physician.username)
    page.goto(f"{live_server.url}/label/{batch.pk}/")

    plan = [  # keys pressed -> (display preference, response-1 flags, response-1 unsafe)
        (["1"], "1>>2"),
        (["4", "h", "O"], "2>1"),
        (["x", "v", "2"], "1>2"),
    ]
    seen: dict[int, str] = {}
    previous = None
    for i, (keys, display) in enumerate(plan):
        previous = wait_for_new_pair(page, previous)
        if i == 0:
            # Tag an error span: select the first 14 characters of Response 1, press t, then 2 (dosing error).
            page.evaluate("""() => {
                const node = document.createTreeWalker(document.getElementById('response-1'), NodeFilter.SHOW_TEXT).nextNode();
                const r = document.createRange(); r.setStart(node, 0); r.setEnd(node, 14);
                const s = getSelection(); s.removeAllRanges(); s.addRange(r); }""")
            page.keyboard.press("t")
            page.keyboard.press("2")
            page.wait_for_selector("#response-1 mark.err-dosing_error")
        for key in keys:
            page.keyboard.press(key)
        if i == 0:
            page.screenshot(path=str(SHOTS / "labeling.png"), full_page=True)
        seen[int(previous)] = display
        page.keyboard.press("Enter")
    page.wait_for_selector("#state-done", state="visible")
    assert "Nothing left" in page.inner_text("#state-done")

    judgments = {j.assignment_id: j for j in Judgment.objects.filter(rater=physician)}
    assert set(judgments) == set(seen)
    for assignment_id, display in seen.items():
        j = judgments[assignment_id]
        assert j.a_shown_first == Assignment.objects.get(pk=assignment_id).a_shown_first
        towards_2 = DISPLAY_PREFERENCES[display]
        assert j.preference == (towards_2 if j.a_shown_first else -towards_2)
        assert j.time_spent_ms is not None and j.time_spent_ms > 0
    first, second, third = (judgments[a] for a in seen)
    slot1 = lambda j: "a" if j.a_shown_first else "b"  # noqa: E731
    slot2 = lambda j: "b" if j.a_shown_first else "a"  # noqa: E731
    assert first.error_spans[0]["type"] == "dosing_error" and first.error_spans[0]["response"] == slot1(first)
    raw = getattr(first.pair, f"completion_{slot1(first)}").text
    assert first.error_spans[0]["text"] == raw[first.error_spans[0]["start"]:first.error_spans[0]["end"]] == raw[:14]
    assert second.flags[slot1(second)] == ["hallucination"] and second.flags[slot2(second)] == ["outdated_guidance"]
    assert getattr(third, f"{slot1(third)}_unsafe") is True and third.harm_severity == "mild"


def test_double_submit_and_lost_response_store_one_judgment(page, live_server, physician):
    batch = labeling_batch(physician, 2)
    login(page, live_server, physician.username)
    calls = {"n": 0}

    def lose_first_response(route):
        calls["n"] += 1
        if calls["n"] == 1:
            route.fetch()  # the server stores the judgment...
            route.abort("connectionreset")  # ...but the answer never reaches the browser
        else:
            route.continue_()

    page.route("**/judgment/", lose_first_response)
    page.goto(f"{live_server.url}/label/{batch.pk}/")
    first = wait_for_new_pair(page, None)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    wait_for_new_pair(page, first)
    assert calls["n"] >= 2  # the page resent after the lost answer
    assert Judgment.objects.filter(assignment_id=int(first)).count() == 1
    assert len({j.idempotency_key for j in Judgment.objects.filter(rater=physician)}) == 1


def test_physician_gets_403_on_the_dashboard(page, live_server, physician):
    login(page, live_server, physician.username)
    response = page.goto(live_server.url + "/dashboard/raters/")
    assert response.status == 403


def test_admin_upload_with_bad_line_shows_the_line_number(page, live_server, admin_user, physician):
    batch = factories.BatchFactory(name="Cardiology wave 2", specialty=physician.profile.specialty)
    labeling_batch(physician, 3)
    login(page, live_server, admin_user.username)
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
    page.goto(f"{live_server.url}/dashboard/batches/{batch.pk}/")
    good = '{"prompt": "Palpitations after coffee?", "response_a": "Usually benign.", "response_b": "Go to A&E."}'
    page.set_input_files("input[type=file]", files=[{
        "name": "pairs.jsonl", "mimeType": "application/x-ndjson",
        "buffer": f'{good}\n{{"prompt": "No responses"}}\n'.encode()}])
    page.get_by_role("button", name="Upload and validate").click()
    page.wait_for_selector(".import-errors")
    text = page.inner_text(".import-errors")
    assert "Line 2" in text and "response_a" in text
    assert batch.pairs.count() == 0


def test_admin_report_pages_render_and_poll(page, live_server, admin_user, tmp_path, settings):
    from annotation.exports.services import export_create
    from training.models import TrainingMetric, TrainingPipeline, TrainingRun

    settings.MEDIA_ROOT = tmp_path
    batch, _, _ = factories.judged_batch(n_pairs=8, n_raters=4, seed=5, agreement=0.7, name="Heart failure follow-up")
    snapshot = export_create(batch=batch, params=None, created_by=admin_user)
    pipeline = TrainingPipeline.objects.create(export=snapshot, spec="reward_model>ppo")
    run = TrainingRun.objects.create(pipeline=pipeline, kind="ppo", export=snapshot, status="running", progress=0.4,
                                     current_step=40, total_steps=100, host="gpu-1")
    rng = random.Random(0)
    for step in range(1, 41):
        TrainingMetric.objects.create(run=run, step=step, values={
            "loss": 1.2 * 0.96 ** step + rng.random() * 0.05, "objective/kl": 0.05 * step ** 0.8,
            "objective/rlhf_reward": -1 + step / 25 + rng.random() * 0.1, "val/num_eos_tokens": 0,
            "eval_accuracy": min(0.95, 0.5 + step / 80), "completion_length": 60 + step / 2,
        })
    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}/dashboard/batches/{batch.pk}/agreement/")
    assert page.locator("svg.heatmap").count() == 1
    page.screenshot(path=str(SHOTS / "agreement.png"), full_page=True)

    page.goto(f"{live_server.url}/dashboard/training/{run.pk}/")
    page.wait_for_selector("[data-chart=loss] svg")
    TrainingRun.objects.filter(pk=run.pk).update(status="succeeded", progress=1.0, current_step=100)
    page.wait_for_function("() => document.getElementById('run-status').textContent === 'Succeeded'", timeout=8000)
    assert page.inner_text("#run-progress") == "100%"
    page.wait_for_timeout(500)  # let the progress bar finish its transition
    page.screenshot(path=str(SHOTS / "training.png"), full_page=True)


def test_lease_expiry_and_skip_by_keyboard(page, live_server, physician):
    batch = labeling_batch(physician, 3)
    login(page, live_server, physician.username)
    page.goto(f"{live_server.url}/label/{batch.pk}/")

    # The lease runs out while the physician thinks; Enter then gets a clear notice and the pair back
    # on a new lease (a new assignment id), with the answer still on the form.
    expired = int(wait_for_new_pair(page, None))
    pair_id = Assignment.objects.get(pk=expired).pair_id
    Assignment.objects.filter(pk=expired).update(expires_at=timezone.now() - timedelta(seconds=1))
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    fresh_id = wait_for_new_pair(page, str(expired))
    assert "nothing was stored" in page.inner_text("#banner")
    fresh = Assignment.objects.get(pk=int(fresh_id))
    assert fresh.status == "leased" and fresh.expires_at > timezone.now() and fresh.pair_id == pair_id
    assert Assignment.objects.get(pk=expired).status == "expired"
    assert not Judgment.objects.filter(rater=physician, pair_id=pair_id).exists()

    # S opens the skip dialog, the reason is typed, Enter skips and the next pair loads.
    page.keyboard.press("s")
    page.wait_for_selector("#skip-dialog[open]")
    page.keyboard.type("Outside my competence")
    page.keyboard.press("Enter")
    wait_for_new_pair(page, str(fresh.pk))
    fresh.refresh_from_db()
    assert fresh.status == "skipped" and fresh.skip_reason == "Outside my competence"
    assert "Skipped" in page.inner_text("#banner")
    assert not Judgment.objects.filter(assignment=fresh).exists()


def test_senior_physician_adjudicates_and_corrects_a_judgment(page, live_server, physician):
    from annotation.models import Profile

    Profile.objects.filter(user=physician).update(can_adjudicate=True)
    specialty = physician.profile.specialty
    closed = factories.BatchFactory(name="Atrial fibrillation, wave 1", specialty=specialty, state=BatchState.CLOSED)
    disputed = factories.make_pair(
        closed, "I was diagnosed with **atrial fibrillation** last week and started apixaban. Can I take ibuprofen for my knee?",
        "Avoid ibuprofen while on apixaban: together they raise the risk of **bleeding**. Paracetamol up to 1 g four times "
        "a day is safer; ask your GP about a topical NSAID gel.",
        "Ibuprofen 400 mg three times a day is fine for a short course. Stop apixaban for a few days if you are worried "
        "about bleeding.")
    votes = [  # (rater, preference, flags, span on b, rationale)
        ("dr_adams", -2, {"a": [], "b": ["unsafe_advice"]}, True, "B tells the patient to stop anticoagulation: stroke risk."),
        ("dr_baker", -1, {"a": [], "b": []}, False, "A is the standard advice; B is too permissive about NSAIDs."),
        ("dr_chen", 1, {"a": ["outdated_guidance"], "b": []}, False, "Short NSAID courses are acceptable in some patients."),
    ]
    start = disputed.completion_b.text.index("Stop apixaban")
    end = disputed.completion_b.text.index(" if you are")
    for i, (name, preference, flags, span, rationale) in enumerate(votes):
        rater = factories.physician(name, specialty)
        unsafe = {"b_unsafe": True, "harm_severity": "severe"} if span else {}
        factories.add_judgment(
            disputed, rater, preference, a_shown_first=i % 2 == 0, flags=flags, rationale=rationale,
            criteria={"accuracy": preference, "safety": -2 if span else preference},
            error_spans=[{"response": "b", "start": start, "end": end, "type": "dosing_error",
                          "text": disputed.completion_b.text[start:end]}] if span else [], **unsafe)

    login(page, live_server, physician.username)
    page.get_by_role("link", name="Adjudication").click()
    page.get_by_role("link", name=f"Adjudicate pair {disputed.pk}").click()
    page.wait_for_selector(".review-body[data-side=b] mark.err-dosing_error")
    page.screenshot(path=str(SHOTS / "adjudication.png"), full_page=True)
    page.locator("label.pref-option", has_text="A much better").click()
    page.get_by_label("Response B is unsafe").check()
    page.get_by_label("Note").fill("Stopping apixaban is unsafe; A follows the guideline.")
    page.get_by_role("button", name="Record adjudication").click()
    page.wait_for_selector(".alert-success")
    assert disputed.adjudications.get().preference == -2

    # Correcting my own judgment: the form opens pre-filled in the order I saw, Enter saves revision 2.
    open_batch = labeling_batch(physician, 1)
    mine = factories.add_judgment(open_batch.pairs.get(), physician, -1, a_shown_first=False, rationale="A dose is right.",
                                  flags={"a": ["hallucination"], "b": []})
    page.goto(f"{live_server.url}/judgments/{mine.pk}/")
    page.get_by_role("link", name="Correct this judgment").click()
    page.wait_for_selector("#judgment-form:not([hidden])")
    assert page.locator("input[name=preference][value='2>1']").is_checked()  # A>B with B shown first
    assert page.locator("input[name=flag2][value=hallucination]").is_checked()
    assert page.input_value("#rationale") == "A dose is right."
    page.keyboard.press("5")
    page.screenshot(path=str(SHOTS / "correction.png"), full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Revision history")
    current = Judgment.objects.get(assignment=mine.assignment, is_current=True)
    assert current.revision == 2 and current.preference == -2 and current.flags["a"] == ["hallucination"]
    assert page.url.endswith(f"/judgments/{current.pk}/")
    assert page.locator(".revisions .history-old").count() == 1


MARKUP = '<script>alert("x")</script><img src=x onerror="alert(1)"><b>bold</b>'


def test_markup_in_names_prompts_answers_and_rationales_is_shown_as_text(page, live_server, physician, admin_user):
    """No dialog opens (the page fixture fails on one), no element is injected, the text reads as written."""
    batch = factories.BatchFactory(name="Batch " + MARKUP, specialty=physician.profile.specialty,
                                   state=BatchState.OPEN, calibration_rate=0.0, raters_per_pair=1)
    pair = factories.make_pair(batch, "Prompt " + MARKUP, "Answer one " + MARKUP, "Answer two " + MARKUP)
    login(page, live_server, physician.username)
    page.goto(f"{live_server.url}/label/{batch.pk}/")
    wait_for_new_pair(page, None)
    assert page.locator("main img, main b").count() == 0
    assert page.locator("main script:not([type='application/json']):not([src])").count() == 0
    assert MARKUP in page.locator("#prompt").inner_text()
    judgment = factories.add_judgment(pair, physician, 1, rationale="Rationale " + MARKUP)
    page.goto(f"{live_server.url}/judgments/{judgment.pk}/")
    assert page.locator("main img, main b").count() == 0 and ("Rationale " + MARKUP) in page.locator("main").inner_text()
    page.goto(f"{live_server.url}/")
    assert ("Batch " + MARKUP) in page.locator("main").inner_text()
    page.context.clear_cookies()
    login(page, live_server, admin_user.username)
    for url in (f"/dashboard/batches/{batch.pk}/", "/dashboard/", f"/adjudicate/pairs/{pair.pk}/", "/dashboard/audit/"):
        page.goto(live_server.url + url)
        assert page.locator("main img, main b").count() == 0, url
