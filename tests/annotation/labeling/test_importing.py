import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.errors import ImportRejected
from annotation.labeling.importing import pairs_import
from annotation.models import Batch, Completion, Pair, Prompt
from tests.factories import BatchFactory


def line(**kw) -> str:
    row = {"prompt": "Chest pain on exertion?", "response_a": "See a doctor today.", "response_b": "Rest and wait."}
    row.update(kw)
    return json.dumps({k: v for k, v in row.items() if v is not ...})


@pytest.fixture
def batch(db):
    return BatchFactory(name="import-me")


def test_imports_both_line_shapes(batch):
    lines = [
        line(),
        json.dumps({"prompt": "Dose of amoxicillin?", "completions": [
            {"text": "500 mg three times daily.", "model": "m1"},
            {"text": "Ask a pharmacist.", "model": "m2"},
            {"text": "2 g once.", "model": "m3"},
        ]}),
    ]
    assert pairs_import(batch=batch, lines=lines, actor=None) == 4  # 1 + C(3,2)
    assert Pair.objects.filter(batch=batch).count() == 4
    assert Prompt.objects.count() == 2
    assert Completion.objects.count() == 5
    assert set(Pair.objects.values_list("open_slots", flat=True)) == {3}


@pytest.mark.parametrize("raw, message", [
    (b"{not json", "invalid JSON"),
    (b'"a string"', "must be a JSON object"),
    (b'{"prompt": "x", "response_a": "\xff\xfe", "response_b": "y"}', "invalid UTF-8"),
    (line(prompt=...).encode(), "missing field 'prompt'"),
    (line(response_b=...).encode(), "missing field 'response_b'"),
    (line(prompt="   ").encode(), "'prompt' is empty"),
    (line(response_a=42).encode(), "'response_a' must be a string"),
    (line(response_b="See a doctor today.").encode(), "identical"),
    (line(response_a="x" * 60_000).encode(), "the limit is"),
    (json.dumps({"prompt": "p", "completions": [{"text": "only one"}]}).encode(), "at least two"),
    (line(gold_preference="A>>>B").encode(), "gold_preference"),
    (line(metadata=[1]).encode(), "'metadata' must be an object"),
])
def test_each_bad_line_is_reported_and_nothing_imported(batch, raw, message):
    good = line(prompt="Another question?").encode()
    with pytest.raises(ImportRejected) as exc:
        pairs_import(batch=batch, lines=[good, raw, good.replace(b"Another", b"Third")], actor=None)
    assert [e["line"] for e in exc.value.errors] == [2]
    assert message in exc.value.errors[0]["message"]
    assert Pair.objects.count() == 0 and Prompt.objects.count() == 0


def test_duplicates_in_file_and_against_batch(batch):
    with pytest.raises(ImportRejected) as exc:
        # the same pair with the responses swapped is still the same pair
        pairs_import(batch=batch, lines=[line(), line(response_a="Rest and wait.", response_b="See a doctor today.")], actor=None)
    assert exc.value.errors == [{"line": 2, "message": "duplicate pair: same prompt and responses as line 1"}]
    pairs_import(batch=batch, lines=[line()], actor=None)
    with pytest.raises(ImportRejected) as exc:
        pairs_import(batch=batch, lines=[line()], actor=None)
    assert "already holds it" in exc.value.errors[0]["message"]


def test_every_bad_line_listed(batch):
    with pytest.raises(ImportRejected) as exc:
        pairs_import(batch=batch, lines=[b"{", line().encode(), b"[]", b"", b"nope"], actor=None)
    assert [e["line"] for e in exc.value.errors] == [1, 3, 5]


def test_gold_items_become_calibration(batch):
    pairs_import(batch=batch, lines=[line(gold_preference="A>B")], actor=None)
    assert Pair.objects.get().gold_preference == -1


def test_cli_creates_draft_batch_and_specialty(db, tmp_path, capsys):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join([line(), line(prompt="Second?")]) + "\n")
    call_command("import_pairs", str(path), "--batch", "cli-batch", "--specialty", "Nephrology", "--raters-per-pair", "2")
    batch = Batch.objects.get(name="cli-batch")
    assert batch.state == "draft" and batch.raters_per_pair == 2 and batch.specialty.name == "Nephrology"
    assert batch.pairs.count() == 2
    assert "2 pairs imported" in capsys.readouterr().out


def test_cli_bad_file_exits_nonzero_and_leaves_nothing(db, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(line() + "\n{oops\n")
    with pytest.raises(CommandError, match="1 bad line"):
        call_command("import_pairs", str(path), "--batch", "cli-bad", "--specialty", "Cardiology")
    assert "line 2: invalid JSON" in capsys.readouterr().err
    assert not Batch.objects.filter(name="cli-bad").exists()
    assert Pair.objects.count() == 0


def test_cli_missing_specialty_for_new_batch(db, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(line())
    with pytest.raises(CommandError, match="give --specialty"):
        call_command("import_pairs", str(path), "--batch", "nope")


def test_api_import_ndjson_and_errors(admin_client, batch):
    url = f"/api/batches/{batch.pk}/pairs/"
    body = (line() + "\n" + line(prompt="Q2?") + "\n").encode()
    resp = admin_client.post(url, data=body, content_type="application/x-ndjson")
    assert resp.status_code == 201, resp.content
    assert resp.json() == {"created": 2}
    bad = (line(prompt="Q3?") + "\n" + '{"prompt": "x"}' + "\n").encode()
    resp = admin_client.post(url, data=bad, content_type="application/x-ndjson")
    assert resp.status_code == 400
    assert resp.json()["errors"] == [{"line": 2, "message": "missing field 'response_a' and 'response_b' (or give 'completions')"}]
    assert Pair.objects.filter(batch=batch).count() == 2


def test_api_import_json_list(admin_client, batch):
    resp = admin_client.post(f"/api/batches/{batch.pk}/pairs/", data=[json.loads(line())], format="json")
    assert resp.status_code == 201
    resp = admin_client.post(f"/api/batches/{batch.pk}/pairs/", data={"prompt": "x"}, format="json")
    assert resp.status_code == 400 and "JSONL" in resp.json()["detail"]


def test_api_import_into_closed_batch_is_409(admin_client, db):
    batch = BatchFactory(state="closed")
    resp = admin_client.post(f"/api/batches/{batch.pk}/pairs/", data=[json.loads(line())], format="json")
    assert resp.status_code == 409


def test_optional_specialty_tag_is_kept_on_the_prompt(batch):
    pairs_import(batch=batch, lines=[line(specialty="Cardiology")], actor=None)
    assert Prompt.objects.get().metadata == {"specialty": "Cardiology"}
    with pytest.raises(ImportRejected, match="bad line"):
        pairs_import(batch=batch, lines=[line(prompt="Other?", specialty=7)], actor=None)
