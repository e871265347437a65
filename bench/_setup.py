"""Shared by the benchmarks: a throw-away PostgreSQL database, migrated, with Django set up,
and a COPY feeder to fill it fast."""

import io
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_database(name: str, *, base_url: str = "postgres://postgres@127.0.0.1:5432") -> str:
    """Drop and re-create database `name`, migrate it, set up Django on it; returns its URL."""
    import psycopg

    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{base_url}/{name}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True, env=os.environ)
    import django

    django.setup()
    return url


def copy_rows(cur, table: str, columns: list[str], lines) -> None:
    """COPY FROM STDIN in text format on a psycopg cursor, fed in ~4 MB blocks built from
    generated lines (each tab-separated, newline-terminated)."""
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buf = io.StringIO()
        for line in lines:
            buf.write(line)
            if buf.tell() > 4_000_000:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())
