"""Formula injection: every CSV we serve escapes cells a spreadsheet would run."""

import csv
import io

import pytest

from annotation.models import AuditEvent
from annotation.spreadsheet import FORMULA_STARTS, csv_text, spreadsheet_safe
from tests import factories


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_text_cells_starting_like_a_formula_get_an_apostrophe(start):
    assert spreadsheet_safe(start + "HYPERLINK(\"http://evil\")") == "'" + start + "HYPERLINK(\"http://evil\")"


@pytest.mark.parametrize("value", ["plain", "a=b", "", -0.12, 3, None, "0.4"])
def test_other_cells_are_unchanged(value):
    assert spreadsheet_safe(value) == value


def test_csv_text_escapes_headers_and_cells_and_keeps_numbers():
    text = csv_text([{"=x": "=1+1", "n": -0.5, "s": "@SUM(A1)"}], ["=x", "n", "s"])
    assert list(csv.reader(io.StringIO(text))) == [["'=x", "n", "s"], ["'=1+1", "-0.5", "'@SUM(A1)"]]


@pytest.mark.django_db
def test_agreement_csv_downloads_are_escaped_and_audited(admin_client, settings):
    settings.AGREEMENT_BOOTSTRAP_RESAMPLES = 20
    batch, _, raters = factories.judged_batch(n_pairs=6, n_raters=3, seed=5, name="=cmd|' /C calc'!A0")
    raters[0].username = "-2+3+cmd"
    raters[0].save(update_fields=["username"])
    body = admin_client.get(f"/api/batches/{batch.pk}/agreement/?format=csv&table=per_rater").content.decode()
    cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
    assert "'-2+3+cmd" in cells and "-2+3+cmd" not in cells
    trend = admin_client.get("/api/agreement/trend/?format=csv").content.decode()
    trend_cells = [cell for row in csv.reader(io.StringIO(trend)) for cell in row]
    assert "'=cmd|' /C calc'!A0" in trend_cells and not any(c.startswith("=") for c in trend_cells)
    downloads = AuditEvent.objects.filter(action="agreement.downloaded")
    assert sorted(e.data["table"] for e in downloads) == ["per_rater", "trend"]


@pytest.mark.django_db
def test_export_file_downloads_are_audited(admin_client, admin_user, settings, tmp_path):
    from annotation.exports.services import export_create

    settings.MEDIA_ROOT = tmp_path
    batch, _, _ = factories.judged_batch(n_pairs=4, n_raters=3, seed=6)
    snapshot = export_create(batch=batch, params=None, created_by=admin_user, include_agreement=False)
    name = snapshot.files[0]["name"]
    assert admin_client.get(f"/api/exports/{snapshot.pk}/files/{name}").status_code == 200
    event = AuditEvent.objects.get(action="export.downloaded")
    assert event.actor == admin_user and event.data["file"] == name and event.batch_id == batch.pk
