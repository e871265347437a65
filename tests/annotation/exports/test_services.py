"""export_create / export_open_file and the export API, against the database."""

import json

import pytest
from django.core.management import call_command

from annotation.exports import services as export_services
from annotation.models import Adjudication, AuditEvent, BatchState, ExportSnapshot
from tests import factories

pytestmark = pytest.mark.django_db

ALL_FORMATS = ["trl-jsonl", "trl-conversational", "parquet", "kto"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def read(snapshot, name) -> bytes:
    with export_services.export_open_file(snapshot=snapshot, name=name) as fh:
        return fh.read()


def jsonl(snapshot, name) -> list[dict]:
    return [json.loads(line) for line in read(snapshot, name).decode().splitlines()]


def test_export_create_writes_versioned_snapshot_with_manifest_and_card(admin_user):
    batch, pairs, _ = factories.judged_batch(n_pairs=12, seed=1)
    snap = export_services.export_create(batch=batch, params={"formats": ALL_FORMATS, "test_fraction": 0.25},
                                         created_by=admin_user)
    names = {f["name"] for f in snap.files}
    assert {"train.jsonl", "test.jsonl", "train.kto.jsonl", "train.parquet", "test.conversational.jsonl",
            "manifest.json", "README.md"} <= names
    assert all(f["path"].startswith(f"exports/{batch.pk}/v1/") for f in snap.files)
    manifest = json.loads(read(snap, "manifest.json"))
    assert manifest["version"] == 1 and manifest["policy"] == "majority" and manifest["params_sha256"] == snap.params_sha256
    triples = manifest["counts"]["triples"]
    assert triples["train"] + triples["test"] + sum(manifest["dropped"].values()) == 12
    assert "code_version" in manifest and manifest["created_by"]["username"] == "admin"
    assert read(snap, "README.md").decode().startswith("# ClinPref export")
    assert all(export_services.export_file_sha256_verify(snapshot=snap, name=n) for n in names)
    assert AuditEvent.objects.filter(action="export.created", object_id=str(snap.pk)).exists()


def test_same_params_give_a_new_version_with_byte_identical_data(admin_user):
    batch, _, _ = factories.judged_batch(n_pairs=10, seed=2)
    params = {"formats": ALL_FORMATS, "test_fraction": 0.3, "seed": 5}
    one = export_services.export_create(batch=batch, params=params, created_by=admin_user)
    two = export_services.export_create(batch=batch, params=dict(params, formats=list(reversed(ALL_FORMATS))),
                                        created_by=admin_user)
    assert (one.version, two.version) == (1, 2) and one.params_sha256 == two.params_sha256
    data = lambda s: {f["name"]: f["sha256"] for f in s.files if f["rows"] is not None}  # noqa: E731
    assert data(one) == data(two)
    assert all(read(one, n) == read(two, n) for n in data(one))


def test_vetoed_response_is_never_chosen_and_lands_false_in_kto(admin_user):
    batch, pairs, raters = factories.judged_batch(n_pairs=4, seed=3, agreement=1.0)
    vetoed = pairs[0]
    # Everyone prefers B, but one rater marks B unsafe: B must never be chosen.
    for rater in raters:
        j = vetoed.judgments.get(rater=rater, is_current=True)
        j.preference, j.b_unsafe = 2, rater == raters[0]
        j.save(update_fields=["preference", "b_unsafe"])
    both = pairs[1]
    both.judgments.filter(rater=raters[1]).update(both_unacceptable=True)
    snap = export_services.export_create(batch=batch, params={"formats": ["trl-jsonl", "kto"], "test_fraction": 0},
                                         created_by=admin_user)
    rows = jsonl(snap, "train.jsonl")
    assert {r["pair_id"] for r in rows}.isdisjoint({vetoed.pk, both.pk})
    kto = jsonl(snap, "train.kto.jsonl")
    assert {(r["pair_id"], r["response"], r["label"]) for r in kto if r["reason"] == "vetoed"} == {
        (vetoed.pk, "b", False), (both.pk, "a", False), (both.pk, "b", False)}
    assert snap.manifest["dropped"]["chosen_vetoed"] == 1 and snap.manifest["dropped"]["both_vetoed"] == 1


def test_adjudication_overrides_and_newest_wins(admin_user):
    batch, pairs, _ = factories.judged_batch(n_pairs=3, seed=4, agreement=1.0)
    target = pairs[0]
    Adjudication.objects.create(pair=target, decided_by=admin_user, preference=2, note="old")
    Adjudication.objects.create(pair=target, decided_by=admin_user, preference=-2, note="new")
    snap = export_services.export_create(batch=batch, params={"test_fraction": 0, "ties": "keep"}, created_by=admin_user)
    row = next(r for r in jsonl(snap, "train.jsonl") if r["pair_id"] == target.pk)
    assert row["source"] == "adjudication" and row["chosen"] == target.completion_a.text and row["margin"] == 2.0


def test_grouped_split_has_no_prompt_on_both_sides(admin_user):
    batch, pairs, _ = factories.judged_batch(n_pairs=20, seed=5, agreement=1.0)
    # Two pairs per prompt text: the split must keep them together.
    for i, pair in enumerate(pairs):
        pair.prompt.text = f"Shared prompt {i // 2}"
        pair.prompt.text_sha256 = f"{i // 2:064x}"
        pair.prompt.save(update_fields=["text", "text_sha256"])
    snap = export_services.export_create(batch=batch, params={"test_fraction": 0.3, "formats": ["trl-jsonl", "kto"]},
                                         created_by=admin_user)
    train = {r["prompt"] for r in jsonl(snap, "train.jsonl") + jsonl(snap, "train.kto.jsonl")}
    test = {r["prompt"] for r in jsonl(snap, "test.jsonl") + jsonl(snap, "test.kto.jsonl")}
    assert train and test and train.isdisjoint(test)


def test_rater_disjoint_split_and_dawid_skene_estimates(admin_user):
    batch, _, raters = factories.judged_batch(n_pairs=12, n_raters=4, seed=6)
    snap = export_services.export_create(
        batch=batch, params={"policy": "dawid_skene", "test_fraction": 0.5, "rater_disjoint_test": True,
                             "test_rater_fraction": 0.25, "min_rater_kappa": -1.0},
        created_by=admin_user)
    m = snap.manifest
    assert len(m["test_raters"]) == 1 and set(m["dawid_skene"]["confusion"]) <= {str(r.pk) for r in raters}
    assert set(m["rater_kappas"]) == {str(r.pk) for r in raters}
    test_rows = jsonl(snap, "test.jsonl")
    assert all(r["n_votes"] == 1 for r in test_rows)  # only the held-out rater decides test pairs


def test_datasets_loads_every_format(admin_user, tmp_path):
    datasets = pytest.importorskip("datasets")
    batch, _, _ = factories.judged_batch(n_pairs=12, seed=7)
    snap = export_services.export_create(batch=batch, params={"formats": ALL_FORMATS, "test_fraction": 0.25},
                                         created_by=admin_user)
    for f in snap.files:
        if f["rows"] is None:
            continue
        local = tmp_path / f["name"]
        local.write_bytes(read(snap, f["name"]))
        builder = "parquet" if f["name"].endswith(".parquet") else "json"
        ds = datasets.load_dataset(builder, data_files=str(local), split="train", cache_dir=str(tmp_path / "hf"))
        assert len(ds) == f["rows"], f["name"]
        expected = {"prompt", "completion", "label"} if "kto" in f["name"] else {"prompt", "chosen", "rejected", "margin"}
        assert expected <= set(ds.column_names)


def test_export_default_params_are_valid():
    assert export_services.export_params_validate(params=export_services.export_default_params()).policy == "majority"


class TestApi:
    def url(self, batch_id):
        return f"/api/batches/{batch_id}/exports/"

    def test_permissions(self, physician_client, anon_client, admin_client):
        batch, _, _ = factories.judged_batch(n_pairs=4, seed=8)
        assert physician_client.post(self.url(batch.pk), {}, format="json").status_code == 403
        assert anon_client.post(self.url(batch.pk), {}, format="json").status_code in (401, 403)
        assert physician_client.get("/api/exports/").status_code == 403
        resp = admin_client.post(self.url(batch.pk), {"policy": "majority", "formats": ["trl-jsonl", "kto"],
                                                      "test_fraction": 0.25, "seed": 1}, format="json")
        assert resp.status_code == 201, resp.content
        body = resp.json()
        assert body["version"] == 1 and {"name", "sha256", "rows"} <= set(body["files"][0]) and "path" not in body["files"][0]
        assert body["manifest"]["policy"] == "majority"
        assert admin_client.get(f"/api/exports/{body['id']}/").json()["id"] == body["id"]
        assert [e["id"] for e in admin_client.get("/api/exports/").json()["results"]] == [body["id"]]
        assert admin_client.get(f"/api/exports/?batch={batch.pk + 1000}").json()["results"] == []
        bad = admin_client.get("/api/exports/?batch=cardiology")
        assert bad.status_code == 400 and "batch" in bad.json()["errors"]
        file_resp = admin_client.get(f"/api/exports/{body['id']}/files/train.jsonl")
        assert file_resp.status_code == 200
        content = b"".join(file_resp.streaming_content)
        snap = ExportSnapshot.objects.get(pk=body["id"])
        assert content == read(snap, "train.jsonl")
        assert file_resp["X-Content-SHA256"] == next(f["sha256"] for f in body["files"] if f["name"] == "train.jsonl")
        assert admin_client.get(f"/api/exports/{body['id']}/files/nope.jsonl").status_code == 404
        assert physician_client.get(f"/api/exports/{body['id']}/files/train.jsonl").status_code == 403

    @pytest.mark.parametrize("body,needle", [
        ({"policy": "vibes"}, "policy"), ({"formats": ["csv"]}, "Unknown format"), ({"test_fraction": 1.5}, "test_fraction"),
        ({"min_agreement": 0}, "min_agreement"), ({"polcy": "majority"}, "Unknown export parameter"),
    ])
    def test_bad_input_is_400_with_a_clear_message(self, admin_client, body, needle):
        batch, _, _ = factories.judged_batch(n_pairs=2, seed=9)
        resp = admin_client.post(self.url(batch.pk), body, format="json")
        assert resp.status_code == 400 and needle in resp.json()["detail"]

    def test_draft_batch_is_409_and_missing_batch_404(self, admin_client):
        batch, _, _ = factories.judged_batch(n_pairs=2, seed=10, state=BatchState.DRAFT)
        resp = admin_client.post(self.url(batch.pk), {}, format="json")
        assert resp.status_code == 409 and "draft" in resp.json()["detail"]
        assert admin_client.post(self.url(999999), {}, format="json").status_code == 404


def test_cli_copies_snapshot_files(admin_user, tmp_path):
    batch, _, _ = factories.judged_batch(n_pairs=6, seed=11)
    out = tmp_path / "out"
    call_command("export_batch", str(batch.pk), "--format", "trl-jsonl", "--format", "kto", "--out", str(out),
                 "--test-fraction", "0.2", "--user", "admin", "--no-progress")
    snap = ExportSnapshot.objects.get(batch=batch)
    assert sorted(p.name for p in out.iterdir()) == sorted(f["name"] for f in snap.files)
    assert (out / "train.jsonl").read_bytes() == read(snap, "train.jsonl")


@pytest.mark.parametrize("policy", ["majority", "unanimous"])
def test_database_paths_decide_identically(admin_user, policy):
    """PostgreSQL's summarised and per-vote streams and the portable ORM stream yield the same decisions."""
    from django.db import connection

    from annotation import exports
    from annotation.models import Judgment

    batch, pairs, raters = factories.judged_batch(n_pairs=15, seed=12, agreement=0.6)
    Judgment.objects.filter(pair=pairs[0], rater=raters[0]).update(b_unsafe=True, flags={"a": ["hallucination"]})
    Judgment.objects.filter(pair=pairs[1], rater=raters[1]).update(flags={"b": ["unsafe_advice"]})
    Adjudication.objects.create(pair=pairs[2], decided_by=admin_user, preference=0, a_unsafe=True, note="n")
    params = exports.ExportParams(policy=policy, ties="keep")
    backends = [("orm", False)] + ([("postgresql", False), ("postgresql", True)] if connection.vendor == "postgresql" else [])
    results = []
    for backend, per_vote in backends:
        with transaction_atomic():
            stream = export_services._pairs_stream(batch, per_vote=per_vote, veto_flags=params.veto_flags, backend=backend)
            results.append([(p.pair_id, p.prompt_key, exports.pair_decide(p, params)) for p in stream])
    assert len(results[0]) == 15 and all(r == results[0] for r in results)


def transaction_atomic():
    from django.db import transaction

    return transaction.atomic()


TRICKY = 'Quote " backslash \\ newline \n tab \t ctrl \x01\x1f del \x7f 50% {brace} é 🙂 \u2028 end'


def _edge_case_batch(admin_user):
    """Ties, splits, vetoes of every kind, adjudications (newest wins, one unsafe), a calibration
    item, a pair without current votes, a superseded vote, and texts/flags that need escaping."""
    from annotation.models import Judgment, Pair

    batch, pairs, raters = factories.judged_batch(n_pairs=24, seed=13, agreement=0.5)
    j = lambda pair, rater: Judgment.objects.filter(pair=pair, rater=rater)  # noqa: E731
    j(pairs[0], raters[0]).update(b_unsafe=True, flags={"a": ["hallucination"], "b": ["50%_{odd}"]})
    j(pairs[1], raters[1]).update(flags={"b": ["unsafe_advice"]})
    Adjudication.objects.create(pair=pairs[2], decided_by=admin_user, preference=2, note="old")
    Adjudication.objects.create(pair=pairs[2], decided_by=admin_user, preference=0, a_unsafe=True, note="new")
    Adjudication.objects.create(pair=pairs[3], decided_by=admin_user, preference=-1, note="n")
    j(pairs[4], raters[2]).update(both_unacceptable=True)
    Judgment.objects.filter(pair=pairs[5]).update(preference=0)
    for rater, pref in zip(raters, (-1, 0, 1)):
        j(pairs[6], rater).update(preference=pref)
    Pair.objects.filter(pk=pairs[7].pk).update(gold_preference=1)
    Judgment.objects.filter(pair=pairs[8]).update(is_current=False)
    j(pairs[9], raters[0]).update(is_current=False)
    Judgment.objects.filter(pair=pairs[10]).update(preference=-2, flags={"b": ["outdated_guidance"]})
    for text, obj in ((TRICKY, pairs[10].prompt), (TRICKY + " A", pairs[10].completion_a),
                      ("%s %d {0} " + TRICKY, pairs[10].completion_b)):
        obj.text = text
        obj.save(update_fields=["text"])
    return batch


@pytest.mark.parametrize("params", [
    {"policy": "majority", "test_fraction": 0.3},
    {"policy": "majority", "ties": "keep", "test_fraction": 0.3, "seed": 3},
    {"policy": "majority", "adjudication_override": False, "test_fraction": 0},
    {"policy": "unanimous", "ties": "keep", "test_fraction": 0.25},
    {"policy": "min_agreement", "min_agreement": 3, "test_fraction": 0.3, "veto_flags": []},
    {"policy": "adjudicated", "ties": "keep", "test_fraction": 0.3},
    {"policy": "majority", "min_votes": 3, "include_calibration": True, "test_fraction": 0.3},
])
def test_fast_trl_jsonl_path_writes_the_reference_bytes(admin_user, monkeypatch, params):
    """PostgreSQL's fast trl-jsonl writer (memoised decisions, texts escaped by the database)
    against the reference path (export_write over PairVotes): same bytes, same counts."""
    from django.db import connection

    from annotation import exports

    if connection.vendor != "postgresql":
        pytest.skip("the fast path is PostgreSQL only")
    batch = _edge_case_batch(admin_user)
    fast_calls = []
    real_fast = exports.export_write_trl_jsonl
    monkeypatch.setattr(exports, "export_write_trl_jsonl", lambda *a, **kw: fast_calls.append(1) or real_fast(*a, **kw))
    params = {"formats": ["trl-jsonl"], **params}
    snaps = {}
    for fast in (True, False):
        monkeypatch.setattr(export_services, "FAST_PATH", fast)
        snaps[fast] = export_services.export_create(batch=batch, params=params, created_by=admin_user,
                                                    include_agreement=False)
    assert fast_calls == [1]
    fast, ref = snaps[True], snaps[False]
    data = lambda s: [f for f in s.files if f["rows"] is not None]  # noqa: E731
    assert [(f["name"], f["sha256"], f["rows"], f["bytes"]) for f in data(fast)] == \
        [(f["name"], f["sha256"], f["rows"], f["bytes"]) for f in data(ref)]
    assert all(read(fast, f["name"]) == read(ref, f["name"]) for f in data(ref))
    for key in ("counts", "dropped", "excluded_votes"):
        assert fast.manifest[key] == ref.manifest[key], key
    # split on "\n" only: str.splitlines would also cut at the raw U+2028 that JSON allows.
    rows = [json.loads(line) for f in data(ref) for line in read(ref, f["name"]).decode().split("\n") if line]
    assert rows and (any(TRICKY in r["prompt"] for r in rows) or params["policy"] == "adjudicated")


def test_first_export_of_a_closed_batch_moves_it_to_exported(admin_user):
    batch, _, _ = factories.judged_batch(n_pairs=6, seed=21)
    assert batch.state == BatchState.CLOSED
    export_services.export_create(batch=batch, params={}, created_by=admin_user)
    batch.refresh_from_db()
    assert batch.state == BatchState.EXPORTED and batch.exported_by == admin_user and batch.exported_at is not None
    assert AuditEvent.objects.filter(action="batch.exported", batch_id=batch.pk).count() == 1
    export_services.export_create(batch=batch, params={}, created_by=admin_user)  # a later version: no new transition
    assert AuditEvent.objects.filter(action="batch.exported", batch_id=batch.pk).count() == 1


def test_exporting_an_open_batch_leaves_it_open(admin_user):
    batch, _, _ = factories.judged_batch(n_pairs=4, seed=22, state=BatchState.OPEN)
    export_services.export_create(batch=batch, params={}, created_by=admin_user)
    batch.refresh_from_db()
    assert batch.state == BatchState.OPEN and batch.exported_at is None


def test_dashboard_finds_each_batchs_newest_export_and_run(admin_user, settings, tmp_path):
    """The batch list's "latest export" and "latest training run" columns: the newest of several, per batch."""
    from annotation.labeling.selectors import batches_latest_export
    from training.models import TrainingPipeline, TrainingRun
    from training.selectors import training_runs_latest_by_batch

    settings.MEDIA_ROOT = tmp_path
    (a, _, _), (b, _, _) = factories.judged_batch(n_pairs=4, seed=1), factories.judged_batch(n_pairs=4, seed=2)
    a1, a2 = (export_services.export_create(batch=a, params=None, created_by=admin_user, include_agreement=False) for _ in range(2))
    b1 = export_services.export_create(batch=b, params=None, created_by=admin_user, include_agreement=False)
    runs = [TrainingRun.objects.create(pipeline=TrainingPipeline.objects.create(export=e, spec="reward_model"), kind="reward_model",
                                       export=e, status="queued") for e in (a2, a1, b1)]  # a1's run is a's newest run
    assert {k: v.pk for k, v in batches_latest_export(batch_ids=[a.pk, b.pk]).items()} == {a.pk: a2.pk, b.pk: b1.pk}
    assert {k: v.pk for k, v in training_runs_latest_by_batch(batch_ids=[a.pk, b.pk]).items()} == {a.pk: runs[1].pk, b.pk: runs[2].pk}
    assert batches_latest_export(batch_ids=[]) == {}
