"""Who may open what: every URL the resolver knows (API, pages, downloads; the Django admin in
its own test below) against every role, with the status each one must get.

Writes are sent with a body that passes the permission check but stops at validation or at a
state rule (400/409), so an allowed role proves it got past the gate without changing the world
the next role sees. The row's owner (the physician of the batch's specialty) goes last.
A URL added without a row here fails `test_every_url_has_a_row`."""

from dataclasses import dataclass, field

import pytest
from django.contrib.admin.sites import site as admin_site
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation import models as m
from annotation.labeling.services import rater_set_active
from tests import factories

ROLES = ("anonymous", "other_specialty", "senior", "deactivated", "admin", "physician")


@dataclass
class Row:
    name: str  # URL pattern name
    path: str  # with {placeholders} filled from the world
    expected: dict  # role -> status
    method: str = "get"
    body: dict = field(default_factory=dict)


def api(name, path, *, physician, other, senior, admin, method="get", body=None):
    """An API row: anonymous and deactivated (old session, tokens deleted) are 401."""
    return Row(name, path, {"anonymous": 401, "deactivated": 401, "physician": physician, "other_specialty": other,
                            "senior": senior, "admin": admin}, method, body or {})


def page(name, path, *, physician, other, senior, admin, method="get", body=None, anonymous=302):
    """A page row: anonymous and deactivated (session ended) are sent to the log-in page."""
    return Row(name, path, {"anonymous": anonymous, "deactivated": anonymous, "physician": physician,
                            "other_specialty": other, "senior": senior, "admin": admin}, method, body or {})


ADMIN_ONLY_API = dict(physician=403, other=403, senior=403)
ADMIN_ONLY_PAGE = dict(physician=403, other=403, senior=403)

ROWS = [
    Row("healthz", "/healthz", dict.fromkeys(ROLES, 200)),
    Row("favicon", "/favicon.ico", dict.fromkeys(ROLES, 301)),
    api("schema", "/api/schema/", physician=200, other=200, senior=200, admin=200),
    api("api-docs", "/api/docs/", physician=200, other=200, senior=200, admin=200),
    api("me", "/api/me/", physician=200, other=200, senior=200, admin=200),
    api("batch-list", "/api/batches/", **ADMIN_ONLY_API, admin=200),
    api("batch-list", "/api/batches/", **ADMIN_ONLY_API, admin=400, method="post"),
    api("batch-detail", "/api/batches/{open}/", **ADMIN_ONLY_API, admin=200),
    api("batch-pairs", "/api/batches/{draft}/pairs/", **ADMIN_ONLY_API, admin=400, method="post"),
    api("batch-open", "/api/batches/{open}/open/", **ADMIN_ONLY_API, admin=409, method="post"),
    api("batch-close", "/api/batches/{draft}/close/", **ADMIN_ONLY_API, admin=409, method="post"),
    api("batch-settings", "/api/batches/{draft}/settings/", **ADMIN_ONLY_API, admin=400, method="post",
        body={"phi_policy": "nonsense"}),
    api("batch-phi", "/api/batches/{draft}/phi/", **ADMIN_ONLY_API, admin=200),
    api("batch-phi", "/api/batches/{draft}/phi/", **ADMIN_ONLY_API, admin=400, method="post"),
    api("pair-gold", "/api/pairs/{closed_pair}/gold/", **ADMIN_ONLY_API, admin=400, method="put"),
    api("import-job-detail", "/api/imports/999999/", **ADMIN_ONLY_API, admin=404),
    api("next-pair", "/api/next/", physician=200, other=204, senior=200, admin=403),
    api("assignment-list", "/api/assignments/", physician=200, other=200, senior=200, admin=200),
    # Someone else's assignment looks exactly like a missing one, to everyone but its rater.
    api("assignment-detail", "/api/assignments/{leased}/", physician=200, other=404, senior=404, admin=404),
    api("judgment-submit", "/api/assignments/{leased}/judgment/", physician=201, other=404, senior=404, admin=403,
        method="post", body={"preference": "1>2", "idempotency_key": "table-test"}),
    api("assignment-skip", "/api/assignments/{leased}/skip/", physician=200, other=404, senior=404, admin=403,
        method="post", body={"reason": "outside my competence"}),
    api("judgment-list", "/api/judgments/", physician=200, other=200, senior=200, admin=200),
    api("rater-list", "/api/raters/", **ADMIN_ONLY_API, admin=200),
    api("rater-list", "/api/raters/", **ADMIN_ONLY_API, admin=400, method="post"),
    api("rater-active", "/api/raters/{physician_id}/active/", **ADMIN_ONLY_API, admin=400, method="post"),
    api("specialty-list", "/api/specialties/", physician=200, other=200, senior=200, admin=200),
    api("audit-list", "/api/audit/", **ADMIN_ONLY_API, admin=200),
    api("batch-agreement", "/api/batches/{closed}/agreement/", **ADMIN_ONLY_API, admin=200),
    api("batch-agreement", "/api/batches/{closed}/agreement/?format=csv&table=pairwise", **ADMIN_ONLY_API, admin=200),
    api("agreement-trend", "/api/agreement/trend/", **ADMIN_ONLY_API, admin=200),
    api("batch-disputes", "/api/batches/{closed}/disputes/", physician=403, other=403, senior=200, admin=200),
    # another specialty's batch is missing to a senior physician
    api("batch-disputes", "/api/batches/{neuro}/disputes/", physician=403, other=403, senior=404, admin=200),
    api("pair-adjudication", "/api/pairs/{closed_pair}/adjudication/", physician=403, other=403, senior=200, admin=200),
    api("pair-adjudication", "/api/pairs/{closed_pair}/adjudication/", physician=403, other=403, senior=400, admin=400,
        method="post"),
    api("export-create", "/api/batches/{draft}/exports/", **ADMIN_ONLY_API, admin=409, method="post"),
    api("export-list", "/api/exports/", **ADMIN_ONLY_API, admin=200),
    api("export-detail", "/api/exports/{export}/", **ADMIN_ONLY_API, admin=200),
    api("export-file", "/api/exports/{export}/files/{export_file}", **ADMIN_ONLY_API, admin=200),
    api("training-run-list", "/api/training-runs/", **ADMIN_ONLY_API, admin=200),
    api("training-run-list", "/api/training-runs/", **ADMIN_ONLY_API, admin=400, method="post"),
    api("training-run-detail", "/api/training-runs/{run}/", **ADMIN_ONLY_API, admin=200),
    api("training-run-cancel", "/api/training-runs/{run}/cancel/", **ADMIN_ONLY_API, admin=202, method="post"),
    # rounds (admins only; a round id that does not exist is a 404 to an admin and a 403 to the rest)
    api("round-list", "/api/rounds/", **ADMIN_ONLY_API, admin=200),
    api("round-list", "/api/rounds/", **ADMIN_ONLY_API, admin=400, method="post"),
    api("round-detail", "/api/rounds/999999/", **ADMIN_ONLY_API, admin=404),
    api("round-cancel", "/api/rounds/999999/cancel/", **ADMIN_ONLY_API, admin=404, method="post"),
    api("round-resume", "/api/rounds/999999/resume/", **ADMIN_ONLY_API, admin=404, method="post"),
    # pages
    Row("login", "/login/", {"anonymous": 200, "deactivated": 200, "physician": 302, "other_specialty": 302,
                             "senior": 302, "admin": 302}),
    Row("logout", "/logout/", dict.fromkeys(ROLES, 302), method="post"),
    page("home", "/", physician=200, other=200, senior=200, admin=302),
    page("label", "/label/{open}/", physician=200, other=404, senior=200, admin=403),
    page("label", "/label/{draft}/", physician=404, other=404, senior=404, admin=403),
    page("label", "/label/{neuro}/", physician=404, other=200, senior=404, admin=403),
    page("workspace-next", "/workspace/{open}/next.json", physician=200, other=404, senior=200, admin=403),
    page("workspace-next", "/workspace/{draft}/next.json", physician=404, other=404, senior=404, admin=403),
    page("judgment-review", "/judgments/{judgment}/", physician=200, other=404, senior=404, admin=200),
    page("judgment-correct", "/judgments/{judgment}/correct/", physician=200, other=404, senior=404, admin=403),
    page("adjudicate", "/adjudicate/", physician=403, other=403, senior=200, admin=200),
    page("adjudicate-pair", "/adjudicate/pairs/{closed_pair}/", physician=403, other=403, senior=200, admin=200),
    page("adjudicate-pair", "/adjudicate/pairs/{neuro_pair}/", physician=403, other=403, senior=404, admin=200),
    page("dashboard", "/dashboard/", **ADMIN_ONLY_PAGE, admin=200),
    page("dashboard-batch", "/dashboard/batches/{open}/", **ADMIN_ONLY_PAGE, admin=200),
    page("dashboard-batch-upload", "/dashboard/batches/{draft}/upload/", **ADMIN_ONLY_PAGE, admin=400, method="post"),
    page("dashboard-batch-open", "/dashboard/batches/{open}/open/", **ADMIN_ONLY_PAGE, admin=302, method="post"),
    page("dashboard-batch-close", "/dashboard/batches/{open}/close/", **ADMIN_ONLY_PAGE, admin=400, method="post"),
    page("dashboard-raters", "/dashboard/raters/", **ADMIN_ONLY_PAGE, admin=200),
    page("dashboard-rater-active", "/dashboard/raters/{other_id}/active/", **ADMIN_ONLY_PAGE, admin=302,
         method="post", body={"is_active": "on"}),
    page("dashboard-audit", "/dashboard/audit/", **ADMIN_ONLY_PAGE, admin=200),
    page("dashboard-agreement", "/dashboard/batches/{closed}/agreement/", **ADMIN_ONLY_PAGE, admin=200),
    page("dashboard-agreement-trend", "/dashboard/agreement/", **ADMIN_ONLY_PAGE, admin=200),
    page("dashboard-exports", "/dashboard/exports/", **ADMIN_ONLY_PAGE, admin=200),
    page("dashboard-training", "/dashboard/training/", **ADMIN_ONLY_PAGE, admin=200),
    page("dashboard-training-run", "/dashboard/training/{run}/", **ADMIN_ONLY_PAGE, admin=200),
    page("dashboard-rounds", "/dashboard/rounds/", **ADMIN_ONLY_PAGE, admin=200),
    page("dashboard-round-cancel", "/dashboard/rounds/999999/cancel/", **ADMIN_ONLY_PAGE, admin=302, method="post"),
    page("dashboard-round-resume", "/dashboard/rounds/999999/resume/", **ADMIN_ONLY_PAGE, admin=302, method="post"),
    page("dashboard-round-simulate", "/dashboard/rounds/999999/simulate/", **ADMIN_ONLY_PAGE, admin=404, method="post"),
    page("dashboard-training-cancel", "/dashboard/training/{run}/cancel/", **ADMIN_ONLY_PAGE, admin=302, method="post"),
]


def url_names() -> set[str]:
    """Every named URL outside the Django admin (tested on its own below)."""
    names = set()

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                if str(p.pattern) != "django-admin/":
                    walk(p.url_patterns, prefix + str(p.pattern))
            else:
                assert isinstance(p, URLPattern) and p.name, f"unnamed URL {prefix}{p.pattern}: name it and add a row"
                names.add(p.name)

    walk(get_resolver().url_patterns, "")
    return names


def test_every_url_has_a_row():
    assert url_names() == {row.name for row in ROWS}


@pytest.fixture
def world(settings, tmp_path):
    """Two specialties; an open, a draft and a closed (exported, trained) Cardiology batch; an open
    Neurology batch; one user per role. The physician holds a lease and owns a judgment; the
    deactivated physician had a session and a token before an admin deactivated them."""
    from annotation.exports.services import export_create
    from training.models import TrainingPipeline, TrainingRun

    settings.MEDIA_ROOT = tmp_path
    settings.AGREEMENT_BOOTSTRAP_RESAMPLES = 20  # figures are not under test here
    cardio = factories.SpecialtyFactory(name="Cardiology", slug="cardiology")
    neuro = factories.SpecialtyFactory(name="Neurology", slug="neurology")
    admin = factories.admin("admin")
    users = {
        "physician": factories.physician("dr_card", cardio),
        "other_specialty": factories.physician("dr_neuro", neuro),
        "senior": factories.physician("dr_senior", cardio),
        "deactivated": factories.physician("dr_gone", cardio),
        "admin": admin,
    }
    m.Profile.objects.filter(user=users["senior"]).update(can_adjudicate=True)
    open_batch = factories.BatchFactory(name="Open cardio", specialty=cardio, state=m.BatchState.OPEN, raters_per_pair=2)
    open_pairs = factories.make_pairs(open_batch, 3)
    draft = factories.BatchFactory(name="Draft cardio", specialty=cardio, state=m.BatchState.DRAFT)
    factories.make_pairs(draft, 1)
    neuro_batch = factories.BatchFactory(name="Open neuro", specialty=neuro, state=m.BatchState.OPEN, raters_per_pair=1)
    neuro_pair = factories.make_pair(neuro_batch, "Neuro question?", "Neuro answer one.", "Neuro answer two.")
    closed, closed_pairs, _ = factories.judged_batch(n_pairs=4, n_raters=3, seed=11)
    snapshot = export_create(batch=closed, params=None, created_by=admin, include_agreement=False)
    pipeline = TrainingPipeline.objects.create(export=snapshot, spec="reward_model")
    run = TrainingRun.objects.create(pipeline=pipeline, kind="reward_model", export=snapshot, status="queued")

    judgment = factories.add_judgment(open_pairs[0], users["physician"], 1)
    factories.add_judgment(open_pairs[0], users["senior"], -1)
    leased = factories.add_judgment(open_pairs[1], users["physician"], 0).assignment
    m.Judgment.objects.filter(assignment=leased).delete()
    m.Assignment.objects.filter(pk=leased.pk).update(status=m.AssignmentStatus.LEASED, finished_at=None)
    factories.add_judgment(open_pairs[2], users["senior"], 2)  # senior has nothing left in the open batch
    factories.add_judgment(neuro_pair, users["other_specialty"], 1)  # nor has the neurologist

    clients = {"anonymous": APIClient()}
    for role, user in users.items():
        clients[role] = APIClient()
        clients[role].force_login(user)
    gone_token = Token.objects.create(user=users["deactivated"])
    rater_set_active(user=users["deactivated"], is_active=False, actor=admin)
    fill = {
        "open": open_batch.pk, "draft": draft.pk, "neuro": neuro_batch.pk, "closed": closed.pk,
        "closed_pair": closed_pairs[0].pk, "neuro_pair": neuro_pair.pk, "leased": leased.pk,
        "judgment": judgment.pk, "physician_id": users["physician"].pk, "other_id": users["other_specialty"].pk,
        "export": snapshot.pk, "export_file": snapshot.files[0]["name"], "run": run.pk,
    }
    return {"clients": clients, "users": users, "fill": fill, "gone_token": gone_token.key}


@pytest.mark.django_db
@pytest.mark.parametrize("row", ROWS, ids=[f"{r.method} {r.path}" for r in ROWS])
def test_url_answers_each_role_as_the_table_says(world, row):
    path = row.path.format(**world["fill"])
    got = {}
    for role in ROLES:
        client = world["clients"][role]
        response = client.get(path) if row.method == "get" else getattr(client, row.method)(path, row.body, format="json")
        got[role] = response.status_code
        if role in ("anonymous", "deactivated") and response.status_code == 302 and row.name not in ("logout", "login"):
            assert response["Location"].startswith("/login/")
    assert got == {role: row.expected[role] for role in ROLES}


@pytest.mark.django_db
def test_deactivated_token_reads_nothing(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {world['gone_token']}")
    rows = [r for r in ROWS if r.path.startswith("/api/")]
    for row in rows:
        path = row.path.format(**world["fill"])
        response = client.get(path) if row.method == "get" else getattr(client, row.method)(path, row.body, format="json")
        assert response.status_code == 401, (row.method, path, response.status_code)
    assert len(rows) > 30


@pytest.mark.django_db
def test_inactive_flag_alone_is_enough(world):
    """A profile marked inactive another way (e.g. in the Django admin) with its session and
    token alive still reads nothing: every view checks the flag, not only the log-in."""
    user = world["users"]["physician"]
    m.Profile.objects.filter(user=user).update(is_active=False)
    token = Token.objects.create(user=user)
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    by_session = world["clients"]["physician"]
    for row in ROWS:
        if row.name in ("healthz", "login", "logout", "favicon"):
            continue
        path = row.path.format(**world["fill"])
        for client in (by_token, by_session):
            response = client.get(path) if row.method == "get" else getattr(client, row.method)(path, row.body, format="json")
            assert response.status_code in (302, 401, 403, 404), (row.path, response.status_code)


def admin_urls(world) -> list[str]:
    """One concrete URL per registered model page of the Django admin."""
    urls = ["/django-admin/"]
    for model, model_admin in admin_site._registry.items():
        base = f"/django-admin/{model._meta.app_label}/{model._meta.model_name}/"
        urls += [base, base + "add/"]
        obj = model.objects.first()
        if obj is not None:
            urls += [f"{base}{obj.pk}/change/", f"{base}{obj.pk}/delete/", f"{base}{obj.pk}/history/"]
    return urls


@pytest.mark.django_db
def test_django_admin_is_closed_to_everyone_but_staff(world):
    """Physicians (any specialty, senior or not) and the deactivated are sent to the admin's
    log-in on every admin URL; the admin role (staff without model permissions) is refused
    every model page; a superuser opens them."""
    superuser = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    root = APIClient()
    root.force_login(superuser)
    urls = admin_urls(world)
    assert len(urls) > 20
    for url in urls:
        for role in ("anonymous", "physician", "other_specialty", "senior", "deactivated"):
            response = world["clients"][role].get(url)
            assert response.status_code == 302 and response["Location"].startswith("/django-admin/login/"), (role, url)
        staff = world["clients"]["admin"].get(url).status_code
        assert staff == (200 if url == "/django-admin/" else 403), (url, staff)
        assert root.get(url).status_code in (200, 403), url  # 403: add/delete of read-only models


@pytest.mark.django_db
def test_audit_events_cannot_be_changed_or_deleted_in_the_django_admin(world):
    superuser = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    root = APIClient()
    root.force_login(superuser)
    event = m.AuditEvent.objects.first()
    before = (event.action, event.data, m.AuditEvent.objects.count())
    base = f"/django-admin/annotation/auditevent/"
    assert root.get(base).status_code == 200
    assert root.get(f"{base}{event.pk}/change/").status_code == 200  # view only
    assert root.post(f"{base}{event.pk}/change/", {"action": "forged"}).status_code == 403
    assert root.post(f"{base}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert root.post(base, {"action": "delete_selected", "_selected_action": [event.pk]}).status_code in (200, 302)
    assert root.post(f"{base}add/", {"action": "forged"}).status_code == 403
    event.refresh_from_db()
    assert (event.action, event.data, m.AuditEvent.objects.count()) == before


@pytest.mark.django_db
def test_every_session_write_needs_the_csrf_token(world):
    """With a session (not a token), every POST without the CSRF token is refused before it
    reaches the view, for the roles that could otherwise make it."""
    writes = [r for r in ROWS if r.method == "post"]
    for role in ("admin", "physician", "senior"):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(world["users"][role])
        for row in writes:
            path = row.path.format(**world["fill"])
            response = client.post(path, row.body, format="json")
            assert response.status_code == 403, (role, path, response.status_code)
            assert "CSRF" in response.content.decode(), (role, path)
    assert len(writes) > 15
