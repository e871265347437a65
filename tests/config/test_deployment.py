"""The production shape: compose file, deploy checks, and the web process staying light."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_services_with_health_checks():
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "gpu-worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker", "gpu-worker"):
        assert "healthcheck" in services[name], name
    gpu = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert (ROOT / ".env.example").exists() and (ROOT / "Dockerfile").exists()


def _command(service: dict) -> list[str]:
    cmd = service.get("command")
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd or [])


def test_every_compose_command_exists_in_the_project(settings):
    services = compose()["services"]
    commands = get_commands()
    queues_served = set()
    for name, service in services.items():
        cmd = _command(service)
        if not cmd or name in ("postgres", "redis"):
            continue
        if cmd[:2] == ["python", "manage.py"]:
            assert cmd[2] in commands, f"{name}: no management command {cmd[2]!r}"
        elif cmd[0] == "gunicorn":
            module, attr = cmd[1].split(":")
            mod = __import__(module, fromlist=[attr])
            assert callable(getattr(mod, attr)), name
        elif cmd[0] == "celery":
            assert cmd[1:3] == ["-A", "config"], name
            from config.celery_app import app

            assert app.main == "clinpref"
            if "-Q" in cmd:
                queues_served |= set(cmd[cmd.index("-Q") + 1].split(","))
        else:
            raise AssertionError(f"{name}: unknown command {cmd}")
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert routed <= queues_served, f"queues without a worker: {routed - queues_served}"


def test_production_settings_pass_the_deploy_check():
    env = {**os.environ, "SECRET_KEY": "s" * 30 + "-k3y-" + "q" * 30, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "ALLOWED_HOSTS": "clinpref.example.org",
           "REDIS_URL": "redis://redis:6379/0"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the browser tests set it for their own process
    out = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_production_refuses_a_weak_secret():
    env = {**os.environ, "SECRET_KEY": "short", "DJANGO_SETTINGS_MODULE": "config.settings.production"}
    env.pop("CLINPREF_ALLOW_WEAK_SECRET", None)
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "SECRET_KEY" in out.stderr


def test_the_web_process_never_imports_training_libraries():
    code = (
        "import django, sys; django.setup();"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "import config.wsgi;"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'accelerate', 'datasets') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_healthz(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
