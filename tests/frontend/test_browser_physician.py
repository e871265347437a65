"""The physician's shift in a real browser (issue 16): nothing lost, every refusal seen, and the
admin's figures that must not mislead. Debian's chromium driven by Playwright, with axe-core.

Screenshots at 1440x900, 1024x768 and 390x844 land in tests/screenshots/."""

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone

from annotation.models import Assignment, Judgment, Pair
from tests import factories
from tests.frontend.test_browser import (  # noqa: F401 (fixtures)
    SHOTS, browser, labeling_batch, login, pytestmark, sized_page, wait_for_new_pair,
)

RESPONSE_A = "Call emergency services now and chew 300 mg of aspirin unless you are allergic."
RESPONSE_B = "Rest for an hour and take 2 g of aspirin; see your GP next week."


@pytest.fixture(autouse=True)
def small_bootstrap(settings):
    settings.AGREEMENT_BOOTSTRAP_RESAMPLES = 50


def assert_no_axe_violations(page, what: str) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"axe-core on {what}:\n{results.generate_report()}"


def open_workspace(page, live_server, physician, n_pairs: int = 3):
    batch = labeling_batch(physician, n_pairs)
    login(page, live_server, physician.username)
    page.goto(f"{live_server.url}/label/{batch.pk}/")
    return batch, wait_for_new_pair(page, None)


def first_sentence_of_response_1(assignment_id: str) -> str:
    return RESPONSE_A if Assignment.objects.get(pk=int(assignment_id)).a_shown_first else RESPONSE_B


def test_rejected_submit_is_scrolled_into_view_focused_and_announced(sized_page, live_server, physician):
    page = sized_page(1440, 900)
    open_workspace(page, live_server, physician)
    page.screenshot(path=str(SHOTS / "labeling_1440.png"))  # the first screen, as a physician sees it
    page.keyboard.press("1")
    page.keyboard.press("x")  # a veto without a harm severity
    page.keyboard.press("Enter")
    page.wait_for_selector("#form-error:not([hidden])")
    assert "harm severity" in page.inner_text("#form-error")
    assert page.get_attribute("#form-error", "role") == "alert"
    assert page.evaluate("document.activeElement.id") == "harm-severity"
    assert page.get_attribute("#harm-severity", "aria-invalid") == "true"
    for selector in ("#form-error", "#harm-severity"):
        box = page.locator(selector).bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] <= 900, f"{selector} is off screen: {box}"
    assert not Judgment.objects.exists()
    page.screenshot(path=str(SHOTS / "labeling_rejected.png"))


def test_draft_is_restored_after_a_reload_and_dropped_on_submit(sized_page, live_server, physician):
    page = sized_page(1440, 900)
    _, assignment_id = open_workspace(page, live_server, physician)
    page.keyboard.press("4")
    page.keyboard.press("h")
    page.keyboard.press("r")
    page.keyboard.type("Response 2 sends the patient to the emergency department.")
    page.keyboard.press("Escape")
    page.reload()
    assert wait_for_new_pair(page, None) == assignment_id  # the same lease
    assert page.locator("input[name=preference][value='2>1']").is_checked()
    assert page.locator("input[name=flag1][value=hallucination]").is_checked()
    assert page.input_value("#rationale") == "Response 2 sends the patient to the emergency department."
    assert "restored" in page.inner_text("#banner")
    page.keyboard.press("Enter")
    wait_for_new_pair(page, assignment_id)
    judgment = Judgment.objects.get(assignment_id=int(assignment_id))
    assert judgment.rationale == "Response 2 sends the patient to the emergency department."
    assert page.evaluate(f"sessionStorage.getItem('clinpref:draft:{assignment_id}')") is None


def test_error_span_marked_from_the_keyboard_with_a_sentence_cursor(sized_page, live_server, physician):
    page = sized_page(1440, 900)
    _, assignment_id = open_workspace(page, live_server, physician)
    for key in ("n", "n", "p"):  # forward twice, back once: the first sentence of Response 1
        page.keyboard.press(key)
    page.wait_for_function("() => /Response 1, sentence 1 of/.test(document.getElementById('ws-status').textContent)")
    page.keyboard.press("t")
    page.wait_for_selector("#span-picker:not([hidden])")
    page.keyboard.press("3")  # omission
    page.wait_for_selector("#response-1 mark.err-omission")
    page.screenshot(path=str(SHOTS / "labeling_sentence_span.png"))
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    wait_for_new_pair(page, assignment_id)
    span = Judgment.objects.get(assignment_id=int(assignment_id)).error_spans[0]
    assert span["type"] == "omission" and span["text"] == first_sentence_of_response_1(assignment_id)


def test_rubric_table_stays_inside_a_phone_screen(sized_page, live_server, physician):
    page = sized_page(390, 844, is_mobile=True, has_touch=True)
    open_workspace(page, live_server, physician)
    page.click("#criteria-box summary")
    page.wait_for_selector("#criteria tbody tr")
    widths = page.evaluate("""() => ({page: document.documentElement.scrollWidth, view: window.innerWidth,
        table: document.querySelector('#criteria-box .table-scroll').getBoundingClientRect().right})""")
    assert widths["page"] <= widths["view"] == 390, widths
    assert widths["table"] <= 390, widths
    headers = page.locator("#criteria thead th.c").all_inner_texts()
    assert headers[0].lower() == "response 1 much better" and ">" not in "".join(headers)
    assert not page.locator(".pref-key").first.is_visible()  # no key hints on a touch screen
    page.screenshot(path=str(SHOTS / "labeling_390.png"), full_page=True)
    page.locator("#criteria-box").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "labeling_390_rubric.png"))


def test_choice_and_submit_reachable_at_1024_without_scrolling(sized_page, live_server, physician):
    page = sized_page(1024, 768)
    open_workspace(page, live_server, physician)
    for selector in ("#submit", ".pref-option >> nth=4"):
        box = page.locator(selector).bounding_box()
        assert box["y"] + box["height"] <= 768, f"{selector} needs scrolling: {box}"
    page.screenshot(path=str(SHOTS / "labeling_1024.png"))


def test_single_key_shortcuts_can_be_turned_off_and_it_is_remembered(sized_page, live_server, physician):
    page = sized_page(1440, 900)
    _, assignment_id = open_workspace(page, live_server, physician)
    page.focus("#shortcuts-toggle")
    page.keyboard.press("Space")
    assert page.evaluate("localStorage.getItem('clinpref:shortcuts')") == "off"
    page.reload()
    wait_for_new_pair(page, None)
    assert not page.is_checked("#shortcuts-toggle")
    page.locator("#judgment-form").focus()
    for key in ("1", "x", "b", "h"):
        page.keyboard.press(key)
    assert page.locator("input[name=preference]:checked").count() == 0
    assert page.locator("#judgment-form input[type=checkbox]:checked").count() == 0
    assert not page.locator(".pref-key").first.is_visible()
    # Without letter keys everything still works from the keyboard: the sentence buttons, Tab, Enter.
    page.focus(".sentence-tools button[data-sentence=tag][data-slot='1']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#span-picker:not([hidden])")
    assert page.evaluate("document.activeElement.dataset.type") == "hallucination"
    page.keyboard.press("Enter")
    page.wait_for_selector("#response-1 mark.err-hallucination")
    page.focus("input[name=preference][value='1>2']")
    page.keyboard.press("Space")
    page.keyboard.press("Enter")
    wait_for_new_pair(page, assignment_id)
    judgment = Judgment.objects.get(assignment_id=int(assignment_id))
    assert judgment.error_spans[0]["text"] == first_sentence_of_response_1(assignment_id)


def test_late_submit_on_a_reclaimed_lease_keeps_the_answer_and_offers_it_again(sized_page, live_server, physician):
    page = sized_page(1440, 900)
    _, expired = open_workspace(page, live_server, physician)
    pair_id = Assignment.objects.get(pk=int(expired)).pair_id
    page.keyboard.press("2")
    page.keyboard.press("r")
    page.keyboard.type("Aspirin 300 mg is right; 2 g is a dosing error.")
    page.keyboard.press("Escape")
    Assignment.objects.filter(pk=int(expired)).update(expires_at=timezone.now() - timedelta(seconds=1))
    page.keyboard.press("Enter")  # a 409 lease_expired

    fresh = wait_for_new_pair(page, expired)
    assert fresh != expired and Assignment.objects.get(pk=int(fresh)).pair_id == pair_id
    page.wait_for_selector("#recovered:not([hidden])")
    assert page.is_visible("#recovered-resubmit")
    assert page.locator("input[name=preference][value='1>2']").is_checked()
    assert page.input_value("#rationale") == "Aspirin 300 mg is right; 2 g is a dosing error."
    page.screenshot(path=str(SHOTS / "labeling_lease_recovered.png"))
    page.click("#recovered-resubmit")
    wait_for_new_pair(page, fresh)
    stored = Judgment.objects.get(rater=physician, pair_id=pair_id)
    assert stored.assignment_id == int(fresh) and stored.rationale.startswith("Aspirin 300 mg")
    assert Assignment.objects.get(pk=int(expired)).status == "expired"

    # Next time the pair cannot come back (it filled up meanwhile): the answer is offered to copy.
    lost = page.locator("#judgment-form").get_attribute("data-assignment-id")
    lost_pair = Assignment.objects.get(pk=int(lost)).pair_id
    page.keyboard.press("5")
    page.keyboard.press("r")
    page.keyboard.type("Second answer, kept to copy.")
    page.keyboard.press("Escape")
    Assignment.objects.filter(pk=int(lost)).update(expires_at=timezone.now() - timedelta(seconds=1))

    def pair_fills_up(route):
        Pair.objects.filter(pk=lost_pair).update(open_slots=0)
        route.continue_()

    page.route(lambda url: "/next.json" in url and "pair=" in url, pair_fills_up)
    page.keyboard.press("Enter")
    page.wait_for_selector("#recovered:not([hidden])")
    assert not page.is_visible("#recovered-resubmit")
    kept = page.input_value("#recovered-answer")
    assert "Response 2 much better" in kept and "Second answer, kept to copy." in kept
    assert not Judgment.objects.filter(pair_id=lost_pair, rater=physician).exists()


def test_axe_finds_no_violations_on_labeling_dashboard_and_agreement(sized_page, live_server, physician, admin_user):
    page = sized_page(1440, 900)
    open_workspace(page, live_server, physician)
    page.click("#criteria-box summary")
    assert_no_axe_violations(page, "the labeling page")

    admin = sized_page(1440, 900)
    batch, _, _ = factories.judged_batch(n_pairs=8, n_raters=3, seed=9, agreement=0.7, name="Heart failure follow-up")
    login(admin, live_server, admin_user.username)
    assert_no_axe_violations(admin, "the dashboard")
    admin.goto(f"{live_server.url}/dashboard/batches/{batch.pk}/agreement/")
    assert_no_axe_violations(admin, "the agreement report")
    admin.screenshot(path=str(SHOTS / "agreement_1440.png"))


def test_not_enough_data_instead_of_failed_and_greek_letters_stay_lowercase(sized_page, live_server, admin_user):
    page = sized_page(1024, 768)
    lonely, _, _ = factories.judged_batch(n_pairs=4, n_raters=1, seed=3, name="One rater only")
    factories.judged_batch(n_pairs=6, n_raters=3, seed=4, agreement=0.2, name="Raters disagree")
    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}/dashboard/agreement/")
    lonely_row = page.locator("tr", has_text="One rater only").inner_text().lower()
    assert "not enough data" in lonely_row and "failed" not in lonely_row
    headings = " ".join(page.locator("thead th").all_inner_texts())  # as rendered, after text-transform
    assert "α" in headings and "κ" in headings and "Α" not in headings and "Κ" not in headings
    page.screenshot(path=str(SHOTS / "agreement_trend_1024.png"), full_page=True)

    page.goto(f"{live_server.url}/dashboard/batches/{lonely.pk}/agreement/")
    assert "not enough data" in page.inner_text(".alert[role=status]")
    # Granularity: the arrow keys change the choice without reloading; the Show button applies it.
    page.focus("#level")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.id") == "level" and "level=" not in page.url
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**level=five**")

