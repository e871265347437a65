"""Hostile or broken import bodies: every one is a 400 naming the line, never a 5xx, and text
with markup is stored as written and shown as text."""

import json
import re

import pytest

from annotation.models import Pair
from tests.factories import BatchFactory

pytestmark = pytest.mark.django_db

GOOD = json.dumps({"prompt": "Chest pain on exertion?", "response_a": "See a doctor today.", "response_b": "Rest."})


def post_jsonl(client, batch, body: bytes):
    return client.post(f"/api/batches/{batch.pk}/pairs/", body, content_type="application/x-ndjson")


@pytest.fixture
def batch(db):
    return BatchFactory(name="bad-input")


def test_broken_utf8_is_named_by_line(admin_client, batch):
    body = GOOD.encode() + b"\n" + b'{"prompt": "caf\xc3", "response_a": "x", "response_b": "y"}\n'
    response = post_jsonl(admin_client, batch, body)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"line": 2, "message": "invalid UTF-8 at byte 15"}]
    assert not Pair.objects.exists()


def test_a_20_mb_line_is_refused_quickly_with_the_limit(admin_client, batch):
    huge = json.dumps({"prompt": "x" * (20 * 1024 * 1024), "response_a": "a", "response_b": "b"}).encode()
    response = post_jsonl(admin_client, batch, GOOD.encode() + b"\n" + huge)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["line"] == 2 and "prompt" in error["message"]


@pytest.mark.parametrize("depth", [20, 100, 100_000])
def test_deeply_nested_json_is_a_bad_line_not_a_crash(admin_client, batch, depth):
    """Metadata nested within annotation.parsers.MAX_JSON_DEPTH (32) is kept as given; deeper is a
    bad line with its number, never a crash."""
    nested = "[" * depth + "]" * depth
    line = f'{{"prompt": "p", "response_a": "a", "response_b": "b", "metadata": {{"x": {nested}}}}}'
    response = post_jsonl(admin_client, batch, GOOD.encode() + b"\n" + line.encode())
    if depth == 20:
        assert response.status_code == 201
    else:
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert error["line"] == 2 and error["message"] == "invalid JSON: JSON nested deeper than 32 levels"


def test_non_object_and_wrong_types_are_bad_lines(admin_client, batch):
    body = b"\n".join([b"[1, 2]", b'{"prompt": 5, "response_a": "a", "response_b": "b"}', b"null", b'"text"'])
    response = post_jsonl(admin_client, batch, body)
    assert response.status_code == 400
    assert [e["line"] for e in response.json()["errors"]] == [1, 2, 3, 4]


MARKUP = '<script>alert("x")</script><img src=x onerror="alert(1)"><b>bold</b>'


def test_markup_in_every_text_is_stored_verbatim_and_rendered_inert(admin_client, client):
    from tests import factories

    batch = factories.BatchFactory(name=MARKUP, state="draft")
    line = json.dumps({"prompt": "Q " + MARKUP, "response_a": "A " + MARKUP, "response_b": "B " + MARKUP})
    assert post_jsonl(admin_client, batch, line.encode()).status_code == 201
    pair = Pair.objects.get(batch=batch)
    assert pair.prompt.text == "Q " + MARKUP  # stored as written
    from frontend.markdown import markdown_to_safe_html

    for text in (pair.prompt.text, pair.completion_a.text):
        html = markdown_to_safe_html(text)
        assert not re.search(r"<(script|img)\b", html) and "&lt;script&gt;" in html
    admin = factories.admin("admin2")
    client.force_login(admin)
    page = client.get(f"/dashboard/batches/{batch.pk}/").content.decode()
    assert MARKUP not in page and "&lt;script&gt;" in page
