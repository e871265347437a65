"""Security settings, checked the way an attacker or a careless deployer would meet them:
placeholder secrets, password guessing, weak passwords, sessions, CSP, the API docs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from annotation.models import Profile
from config.settings.secrets import KNOWN_PLACEHOLDERS, secret_key_problem
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


def env_example_secret() -> str:
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.startswith("SECRET_KEY="):
            return line.split("=", 1)[1]
    raise AssertionError(".env.example has no SECRET_KEY line")


def test_the_env_example_key_is_refused_at_production_start_up_with_how_to_fix_it():
    key = env_example_secret()
    assert key in KNOWN_PLACEHOLDERS and len(key) >= 50  # long enough to pass a length check alone
    env = {**os.environ, "SECRET_KEY": key, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "ALLOWED_HOSTS": "clinpref.example.org"}
    env.pop("CLINPREF_ALLOW_WEAK_SECRET", None)
    out = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "placeholder" in out.stderr and "get_random_secret_key" in out.stderr


@pytest.mark.parametrize("key", [
    "django-insecure-" + "a1b2c3d4e5" * 5,
    "changeme" * 8,
    "your-secret-key-goes-here-and-it-is-long-enough-to-pass-len-check",
    "x" * 60,
    "short-but-random-8f3k2",
])
def test_obvious_placeholders_and_weak_keys_are_refused(key):
    assert secret_key_problem(key)


def test_a_generated_key_is_accepted():
    from django.core.management.utils import get_random_secret_key

    assert all(secret_key_problem(get_random_secret_key()) is None for _ in range(50))


def test_production_serves_the_api_schema_and_docs_to_admins_only():
    env = {**os.environ, "SECRET_KEY": "s" * 30 + "-k3y-" + "q" * 30, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "ALLOWED_HOSTS": "clinpref.example.org", "REDIS_URL": "redis://redis.example.org:6379/0"}
    code = ("import django; django.setup(); from drf_spectacular.views import SpectacularAPIView as a, "
            "SpectacularSwaggerSplitView as d; print([c.__name__ for c in a.permission_classes + d.permission_classes])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "['IsAdminRole', 'IsAdminRole']", out.stderr


@pytest.mark.django_db
def test_twelve_wrong_passwords_lock_the_account_from_that_address(physician):
    client = Client()
    statuses = [client.post("/login/", {"username": physician.username, "password": f"wrong-{i}"}).status_code
                for i in range(12)]
    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert set(statuses[5:]) == {429}  # locked after the fifth
    locked = client.post("/login/", {"username": physician.username, "password": "correct-horse-9"})
    assert locked.status_code == 429 and "Too many failed log-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # The same address can still log another account in; the lockout is per (user, address).
    other = factories.physician("dr_other", physician.profile.specialty)
    assert Client().post("/login/", {"username": other.username, "password": "correct-horse-9"}).status_code == 302


@pytest.mark.django_db
def test_the_django_admin_log_in_is_throttled_too(admin_user):
    client = Client()
    for i in range(5):
        client.post("/django-admin/login/", {"username": admin_user.username, "password": f"nope-{i}"})
    assert client.post("/django-admin/login/", {"username": admin_user.username, "password": "correct-horse-9"}).status_code == 429


WEAK = [("12345678901", "entirely numeric"), ("password123", "too common"), ("short9", "too short"),
        ("dr_weakling1", "too similar")]


@pytest.mark.django_db
@pytest.mark.parametrize("password, why", WEAK)
def test_the_raters_api_runs_the_password_validators(admin_client, specialty, password, why):
    response = admin_client.post("/api/raters/", {"username": "dr_weakling", "password": password, "specialty": "Cardiology"},
                                 format="json")
    assert response.status_code == 400 and why in str(response.json())


@pytest.mark.django_db
@pytest.mark.parametrize("password, why", WEAK)
def test_add_rater_runs_the_password_validators(monkeypatch, specialty, password, why):
    monkeypatch.setenv("RATER_PASSWORD", password)
    with pytest.raises(CommandError, match=why):
        call_command("add_rater", "dr_weakling", "--specialty", "Cardiology")


@pytest.mark.django_db
def test_the_django_admin_runs_the_password_validators():
    root = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    response = client.post("/django-admin/auth/user/add/", {"username": "dr_weak", "password1": "12345678901",
                                                           "password2": "12345678901", "usable_password": "true"})
    assert response.status_code == 200 and "entirely numeric" in response.content.decode()


def test_sessions_expire_within_a_working_day(settings):
    assert settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert settings.SESSION_COOKIE_HTTPONLY


@pytest.mark.django_db
def test_every_page_carries_a_csp_without_inline_script(client):
    csp = client.get("/login/")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


@pytest.mark.django_db
def test_the_api_docs_page_loads_swagger_without_inline_script(admin_client):
    response = admin_client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"<script>(?!\s*</script>)", html)
    assert "cdn.jsdelivr.net" in response["Content-Security-Policy"].split("script-src", 1)[1].split(";")[0]


def test_no_template_has_inline_script_or_event_handlers():
    """json_script renders data blocks (type application/json), never executed; anything else
    inline would be blocked by the CSP and break the page."""
    offenders = []
    for path in (ROOT / "frontend" / "templates").rglob("*.html"):
        html = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            if "src=" not in tag:
                offenders.append(f"{path.name}: {tag}")
        offenders += [f"{path.name}: {h}" for h in re.findall(r"\son[a-z]+\s*=", html)]
        offenders += [f"{path.name}: javascript: URL" for _ in re.findall(r"javascript:", html)]
    assert offenders == []


@pytest.mark.django_db
def test_403_and_404_pages_have_the_site_frame_and_a_way_back(settings, physician):
    settings.DEBUG = False
    client = Client()
    client.force_login(physician)
    for url, status in (("/dashboard/", 403), ("/label/999999/", 404), ("/no-such-page/", 404)):
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == status, url
        assert 'class="topbar"' in body and "Back to your queue" in body and 'href="/"' in body, url


@pytest.mark.django_db
def test_deactivation_ends_sessions_deletes_tokens_and_releases_leases(admin_client, physician):
    from rest_framework.authtoken.models import Token

    from annotation.models import Assignment, AssignmentStatus, AuditEvent, Pair

    batch = factories.BatchFactory(name="leases", state="open", specialty=physician.profile.specialty, raters_per_pair=2)
    factories.make_pairs(batch, 2)
    browser = Client()
    browser.force_login(physician)
    token = Token.objects.create(user=physician)
    leased = browser.get(f"/workspace/{batch.pk}/next.json").json()["assignment"]
    pair = Assignment.objects.get(pk=leased["assignment_id"]).pair
    assert Pair.objects.get(pk=pair.pk).open_slots == 1
    assert admin_client.post(f"/api/raters/{physician.pk}/active/", {"is_active": False}, format="json").status_code == 200
    assert not Token.objects.filter(key=token.key).exists()
    assert Assignment.objects.get(pk=leased["assignment_id"]).status == AssignmentStatus.EXPIRED
    assert Pair.objects.get(pk=pair.pk).open_slots == 2
    assert browser.get("/api/me/").status_code in (401, 403)
    assert browser.get("/").status_code == 302  # back to the log-in page
    assert Client().post("/login/", {"username": physician.username, "password": "correct-horse-9"}).status_code == 200
    event = AuditEvent.objects.get(action="rater.deactivated")
    assert event.data == {"sessions_ended": 1, "tokens_deleted": 1, "leases_released": 1}
    # Reactivated, they log in again (with a new session; the old token stays gone).
    admin_client.post(f"/api/raters/{physician.pk}/active/", {"is_active": True}, format="json")
    assert Profile.objects.get(user=physician).is_active
    assert Client().post("/login/", {"username": physician.username, "password": "correct-horse-9"}).status_code == 302


@pytest.mark.django_db
def test_an_admin_cannot_deactivate_themselves(admin_client, admin_user):
    assert admin_client.post(f"/api/raters/{admin_user.pk}/active/", {"is_active": False}, format="json").status_code == 409
