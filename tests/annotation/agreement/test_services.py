"""Agreement reports of a batch: what they contain, when they are recomputed, the training gate,
the API (permissions, levels, CSV) and the `agreement` management command."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotation.agreement import services as reports
from annotation.models import AgreementReport, Judgment
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

BOOTSTRAP = 50  # keep tests fast; the setting's default is 1000


@pytest.fixture(autouse=True)
def small_bootstrap(settings):
    settings.AGREEMENT_BOOTSTRAP_RESAMPLES = BOOTSTRAP


@pytest.fixture
def judged():
    batch, pairs, raters = factories.judged_batch(n_pairs=12, n_raters=3, seed=4)
    return batch, pairs, raters


def test_report_of_a_judged_batch(judged):
    batch, pairs, raters = judged
    for j in Judgment.objects.filter(batch=batch):
        j.criteria = {"accuracy": j.preference, "safety": 0} if j.pair_id == pairs[0].pk else {"accuracy": j.preference}
        j.save(update_fields=["criteria"])
    report = reports.agreement_report_for_batch(batch=batch)
    assert report["level"] == "three" and report["metric"] == "nominal"
    assert report["n_items"] == 12 and report["n_raters"] == 3 and report["n_judgments"] == 36
    assert {p["rater_a"] for p in report["cohen_kappa"]} <= {r.username for r in raters}
    assert len(report["cohen_kappa"]) == 3 and all(p["n"] == 12 for p in report["cohen_kappa"])
    assert sorted(r["rater"] for r in report["per_rater"]) == sorted(r.username for r in raters)
    distribution = report["preference_distribution"]
    assert distribution["n"] == 36 and sum(distribution["counts"].values()) == 36
    assert sum(distribution["by_rater"][raters[0].username].values()) == 12
    assert report["krippendorff_alpha_ci"] is not None and report["bootstrap"]["resamples"] == BOOTSTRAP
    assert report["interpretation"]["krippendorff_alpha"] is not None
    accuracy, safety = (next(c for c in report["criteria"] if c["key"] == key) for key in ("accuracy", "safety"))
    # A criterion rated like the overall preference agrees exactly as much as the preference.
    assert accuracy["n_judgments"] == 36 and accuracy["krippendorff_alpha"] == pytest.approx(report["krippendorff_alpha"])
    assert safety["n_judgments"] == 3 and safety["krippendorff_alpha"] is None
    # judged_batch alternates display order: position bias is measurable for every rater.
    assert all(r["position_n"] > 0 and r["median_time_ms"] == 30000 for r in report["per_rater"])
    json.dumps(report, default=str, allow_nan=False)


def test_five_point_level_is_ordinal_with_weighted_kappas(judged):
    batch, _, _ = judged
    report = reports.agreement_report_for_batch(batch=batch, level="five")
    assert report["metric"] == "ordinal" and report["categories"] == [-2, -1, 0, 1, 2]
    assert "kappa_quadratic" in report["cohen_kappa"][0]
    assert set(report["krippendorff_alpha_by_metric"]) == {"nominal", "ordinal", "interval"}


def test_binary_level_drops_ties():
    batch, pairs, raters = factories.judged_batch(n_pairs=2, n_raters=2, seed=1, agreement=1.0)
    extra = factories.make_pair(batch, "Tie question?", "one", "two")
    for rater in raters:
        factories.add_judgment(extra, rater, 0)
    three = reports.agreement_report_for_batch(batch=batch, level="three")
    binary = reports.agreement_report_for_batch(batch=batch, level="binary")
    assert binary["n_judgments"] == three["n_judgments"] - 2 - sum(
        1 for j in Judgment.objects.filter(pair__in=pairs, preference=0)
    )
    assert binary["categories"] == [-1, 1]


def test_report_is_cached_until_a_judgment_or_adjudication_changes(judged, django_assert_max_num_queries):
    batch, pairs, raters = judged
    first = reports.agreement_report_for_batch(batch=batch)
    assert AgreementReport.objects.filter(batch=batch).count() == 1
    with django_assert_max_num_queries(6):
        again = reports.agreement_report_for_batch(batch=batch)
    assert again["fingerprint"] == first["fingerprint"]

    newcomer = factories.physician("late_doc", batch.specialty)
    factories.add_judgment(pairs[0], newcomer, 2)
    changed = reports.agreement_report_for_batch(batch=batch)
    assert changed["fingerprint"] != first["fingerprint"] and changed["n_judgments"] == 37
    # The stale report is gone: one row per batch and level.
    assert AgreementReport.objects.filter(batch=batch, level="three").count() == 1

    admin = factories.admin("boss")
    from annotation.adjudication.services import adjudication_record

    adjudication_record(pair=pairs[0], decided_by=admin, preference="A>B", note="Guideline says A.")
    assert reports.agreement_report_for_batch(batch=batch)["fingerprint"] != changed["fingerprint"]


def test_report_notices_a_gold_label_edit_that_keeps_the_number_of_gold_pairs(judged):
    """Count, sum and max id of the gold pairs can all stay the same while a label changes (two
    labels swapped); the batch's data_version moves with every edit, so the cache never serves the
    old gold accuracy."""
    from annotation.labeling.services import pair_gold_set

    batch, pairs, raters = judged
    batch.state = "open"
    batch.save(update_fields=["state"])
    # The first rater says B is much better on pair 0 and A on pair 1; the gold labels agree.
    Judgment.objects.filter(pair=pairs[0], rater=raters[0]).update(preference=2)
    Judgment.objects.filter(pair=pairs[1], rater=raters[0]).update(preference=-2)
    first_gold, second_gold = 2, -2
    pairs[0].gold_preference, pairs[1].gold_preference = first_gold, second_gold
    for pair in pairs[:2]:
        pair.save(update_fields=["gold_preference"])
    admin = factories.admin("gold_keeper")
    # Any change through a service starts from the current state: re-key the cache once.
    pair_gold_set(pair_id=pairs[0].pk, gold_preference=first_gold, actor=admin)
    before = reports.agreement_report_for_batch(batch=batch)
    accuracy_before = {r["rater"]: r["gold_accuracy"] for r in before["per_rater"]}

    # Swap the two labels: same count, same sum, same ids of gold pairs.
    pair_gold_set(pair_id=pairs[0].pk, gold_preference=second_gold, actor=admin)
    pair_gold_set(pair_id=pairs[1].pk, gold_preference=first_gold, actor=admin)
    after = reports.agreement_report_for_batch(batch=batch)
    assert after["fingerprint"] != before["fingerprint"]
    fresh = reports.agreement_report_build(batch=batch)
    assert {r["rater"]: r["gold_accuracy"] for r in after["per_rater"]} == {r["rater"]: r["gold_accuracy"] for r in fresh["per_rater"]}
    assert accuracy_before[raters[0].username] == 1.0
    assert {r["rater"]: r["gold_accuracy"] for r in after["per_rater"]}[raters[0].username] == 0.0


def test_every_write_that_changes_a_figure_bumps_the_batch_data_version(judged):
    """Judgments and corrections, adjudications, gold edits and imports bump it in their own
    transaction; a read does not."""
    from annotation.adjudication.services import adjudication_record
    from annotation.labeling.assignment import JudgmentInput, judgment_submit, pair_lease_next
    from annotation.labeling.importing import pairs_import
    from annotation.models import Batch

    batch, pairs, raters = judged
    Batch.objects.filter(pk=batch.pk).update(state="open", raters_per_pair=4, calibration_rate=0.0)
    batch.refresh_from_db()
    pairs[0].gold_preference = 1
    pairs[0].save(update_fields=["gold_preference"])

    def version():
        return Batch.objects.get(pk=batch.pk).data_version

    admin = factories.admin("writer")
    start = version()
    reports.agreement_report_for_batch(batch=batch)
    assert version() == start

    pairs_import(batch=batch, lines=['{"prompt": "New?", "response_a": "x", "response_b": "y"}'], actor=admin)
    assert version() == start + 1
    newcomer = factories.physician("newcomer", batch.specialty)
    assignment = pair_lease_next(rater=newcomer, batch_id=batch.pk)
    judgment, _ = judgment_submit(assignment_id=assignment.pk, rater=newcomer, data=JudgmentInput(preference="1>2", idempotency_key="k1"))
    assert version() == start + 2
    judgment_submit(assignment_id=assignment.pk, rater=newcomer, data=JudgmentInput(preference="1>2", idempotency_key="k1"))
    assert version() == start + 2, "a replay of the same key writes nothing"
    judgment_submit(assignment_id=assignment.pk, rater=newcomer, data=JudgmentInput(preference="2>1", idempotency_key="k2"))
    assert version() == start + 3, "a correction is a change"
    adjudication_record(pair=pairs[1], decided_by=admin, preference="A>B", note="Guideline says A.")
    assert version() == start + 4
    from annotation.labeling.services import pair_gold_set

    pair_gold_set(pair_id=pairs[0].pk, gold_preference=-1, actor=admin)
    assert version() == start + 5


def test_gold_api_is_for_admins_and_audited(judged):
    from annotation.models import AuditEvent

    batch, pairs, raters = judged
    batch.state = "open"
    batch.save(update_fields=["state"])
    pairs[0].gold_preference = 1
    pairs[0].save(update_fields=["gold_preference"])
    assert client_for(raters[0]).put(f"/api/pairs/{pairs[0].pk}/gold/", {"gold_preference": 2}, format="json").status_code == 403
    response = client_for(factories.admin("lead")).put(f"/api/pairs/{pairs[0].pk}/gold/", {"gold_preference": 2}, format="json")
    assert response.status_code == 200 and response.json()["gold_preference"] == 2
    assert AuditEvent.objects.filter(action="pair.gold_changed", object_id=str(pairs[0].pk)).get().data == {"from": 1, "to": 2}
    # A regular pair does not become a calibration pair through this door.
    assert client_for(factories.admin("lead2")).put(f"/api/pairs/{pairs[1].pk}/gold/", {"gold_preference": 2},
                                                   format="json").status_code == 409


def test_gate_passes_on_good_agreement_and_names_the_weak_rater():
    batch, pairs, raters = factories.judged_batch(n_pairs=20, n_raters=3, seed=2, agreement=1.0)
    passed, reasons = reports.batch_agreement_gate(batch=batch)
    assert passed and reasons == []

    contrarian = factories.physician("contrarian", batch.specialty)
    for pair in pairs:
        truth = Judgment.objects.filter(pair=pair, is_current=True).first().preference
        factories.add_judgment(pair, contrarian, -truth if truth else 2)
    batch.min_alpha = 0.0
    passed, reasons = reports.batch_agreement_gate(batch=batch)
    assert not passed
    assert any("contrarian" in r for r in reasons)


def test_gate_fails_when_alpha_is_below_threshold_or_undefined():
    batch, _, _ = factories.judged_batch(n_pairs=10, n_raters=3, seed=3, agreement=0.0)
    batch.min_alpha, batch.min_rater_kappa = 0.99, -1.0
    passed, reasons = reports.batch_agreement_gate(batch=batch)
    assert not passed and "below the batch threshold 0.99" in reasons[0]

    lonely, _, _ = factories.judged_batch(n_pairs=3, n_raters=1, seed=9)
    passed, reasons = reports.batch_agreement_gate(batch=lonely)
    assert not passed and "Only 0 pair(s) were rated by two or more physicians" in reasons[0]


def test_summary_heatmap_and_trend(judged):
    batch, _, raters = judged
    summary = reports.agreement_summary(batch=batch)
    assert summary["available"] and summary["n_items"] == 12
    heat = reports.agreement_heatmap(report=reports.agreement_report_for_batch(batch=batch))
    assert len(heat["raters"]) == 3 and heat["kappa"][0][0] is None and heat["n"][0][1] == 12
    trend = reports.agreement_trend()
    assert [t["batch"] for t in trend] == [batch.pk]


# --- API -----------------------------------------------------------------------------------------


def test_agreement_api_permissions(judged, physician_client, anon_client, admin_client):
    batch, _, _ = judged
    url = f"/api/batches/{batch.pk}/agreement/"
    assert anon_client.get(url).status_code in (401, 403)
    assert physician_client.get(url).status_code == 403
    response = admin_client.get(url)
    assert response.status_code == 200
    body = response.json()
    for key in ("n_items", "n_raters", "percent_agreement", "fleiss_kappa", "krippendorff_alpha", "cohen_kappa", "per_rater", "notes"):
        assert key in body
    assert body["gate"]["min_alpha"] == batch.min_alpha


def test_agreement_api_levels_and_bad_input(judged, admin_client):
    batch, _, _ = judged
    url = f"/api/batches/{batch.pk}/agreement/"
    assert admin_client.get(url, {"level": "five"}).json()["level"] == "five"
    bad = admin_client.get(url, {"level": "seven"})
    assert bad.status_code == 400 and "level" in bad.json()["detail"]
    assert admin_client.get(url, {"format": "csv"}).status_code == 400
    assert admin_client.get(url, {"format": "csv", "table": "nope"}).status_code == 400
    assert admin_client.get("/api/batches/999999/agreement/").status_code == 404


@pytest.mark.parametrize("table, column", [("pairwise", "kappa"), ("per_rater", "kappa_vs_consensus"), ("disputed", "pair")])
def test_agreement_csv_downloads(judged, admin_client, table, column):
    batch, _, _ = judged
    response = admin_client.get(f"/api/batches/{batch.pk}/agreement/", {"format": "csv", "table": table})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert column in rows[0]


def test_trend_api(judged, admin_client, physician_client):
    assert physician_client.get("/api/agreement/trend/").status_code == 403
    response = admin_client.get("/api/agreement/trend/")
    assert response.status_code == 200 and len(response.json()["results"]) == 1


# --- management command --------------------------------------------------------------------------


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("agreement", *args, stdout=out)
    return out.getvalue()


def test_command_on_a_csv_file(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(
        "item,rater,label\n"
        + "".join(f"{i},r{j},{(i + (j == 2 and i % 3 == 0)) % 3}\n" for i in range(12) for j in range(3))
        + "12,r0,\n"
    )
    data = json.loads(run_command("--csv", str(path), "--level", "ordinal", "--json", "--bootstrap", "20"))
    assert data["n_items"] == 12 and data["n_raters"] == 3 and data["metric"] == "ordinal"
    assert {"rater_a", "rater_b", "n", "kappa"} <= set(data["cohen_kappa"][0])
    assert data["cohen_kappa"][0]["rater_a"] == "r0"
    assert any("empty label" in n for n in data["notes"])
    text = run_command("--csv", str(path))
    assert "Fleiss' kappa" in text and "Krippendorff alpha" in text


def test_command_rejects_bad_csv_with_line_numbers(tmp_path):
    missing = tmp_path / "missing.csv"
    missing.write_text("item,who,label\n1,a,1\n")
    with pytest.raises(CommandError, match="missing column.*rater"):
        run_command("--csv", str(missing))
    words = tmp_path / "words.csv"
    words.write_text("item,rater,label\n1,a,1\n1,b,high\n")
    with pytest.raises(CommandError, match="line 3: label 'high' is not an integer"):
        run_command("--csv", str(words), "--level", "ordinal")
    # As nominal, strings are fine.
    assert json.loads(run_command("--csv", str(words), "--json"))["categories"] == ["1", "high"]
    with pytest.raises(CommandError, match="Cannot read"):
        run_command("--csv", str(tmp_path / "nope.csv"))


def test_command_on_a_batch_matches_the_api(judged, admin_client):
    batch, _, _ = judged
    data = json.loads(run_command("--batch", str(batch.pk), "--json"))
    api = admin_client.get(f"/api/batches/{batch.pk}/agreement/").json()
    assert data["krippendorff_alpha"] == api["krippendorff_alpha"]
    assert data["cohen_kappa"] == api["cohen_kappa"]
    with pytest.raises(CommandError, match="does not exist"):
        run_command("--batch", "999999")


def test_adjudicator_cannot_read_the_report_but_physician_with_right_can_list_disputes(judged):
    batch, _, _ = judged
    senior = factories.physician("senior_doc", batch.specialty)
    senior.profile.can_adjudicate = True
    senior.profile.save(update_fields=["can_adjudicate"])
    client = client_for(senior)
    assert client.get(f"/api/batches/{batch.pk}/agreement/").status_code == 403
    assert client.get(f"/api/batches/{batch.pk}/disputes/").status_code == 200


def test_heatmap_of_many_raters_shows_those_who_agree_least():
    names = [f"r{i:02d}" for i in range(40)]
    report = {
        "per_rater": [{"rater": name, "kappa_vs_consensus": None if i == 0 else i / 40} for i, name in enumerate(names)],
        "cohen_kappa": [{"rater_a": a, "rater_b": b, "kappa": 0.5, "n": 7} for i, a in enumerate(names) for b in names[i + 1:]],
    }
    heat = reports.agreement_heatmap(report=report, max_raters=5)
    # The five lowest defined kappas (r01..r05), in report order; the undefined one only if room is left.
    assert heat["raters"] == ["r01", "r02", "r03", "r04", "r05"] and heat["n_raters"] == 40
    assert heat["kappa"][0][1] == 0.5 and heat["n"][4][3] == 7 and heat["kappa"][2][2] is None
    assert reports.agreement_heatmap(report=report, max_raters=40)["raters"] == names
