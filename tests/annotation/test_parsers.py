"""No request body crashes a worker: every POST endpoint answers a body nested 10,000 levels
deep (a RecursionError, a 500, before bounded parsers) with a clear 4xx, and a body larger
than one request may carry with 413."""

import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.test import override_settings

from annotation.parsers import json_depth_exceeds, json_loads_bounded
from tests import factories
from tests.conftest import client_for

DEEP = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a":' * 10_000 + "1" + "}" * 10_000


def api_post_routes(object_id: int = 1) -> list[tuple[str, bool]]:
    """Every /api/ route whose view accepts POST, with object_id for each id in the path, and
    whether its view reads a body."""
    found = []

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                view = getattr(p.callback, "view_class", None) or getattr(p.callback, "cls", None)
                if view is not None and hasattr(view, "post"):
                    route = prefix + str(p.pattern)
                    for name in p.pattern.converters:
                        route = route.replace(f"<int:{name}>", str(object_id))
                    # A view reads a body when it validates one or names its own parsers.
                    reads_body = hasattr(view, "InputSerializer") or "parser_classes" in view.__dict__
                    found.append(("/" + route.lstrip("^"), reads_body))

    walk(get_resolver().url_patterns, "")
    return sorted(r for r in set(found) if r[0].startswith("/api/"))


def test_the_route_walk_finds_the_endpoints_of_the_issue():
    routes = dict(api_post_routes())
    assert {"/api/assignments/1/skip/", "/api/assignments/1/judgment/", "/api/batches/1/pairs/"} <= set(routes)
    assert routes["/api/assignments/1/skip/"] and routes["/api/batches/1/pairs/"]
    assert len(routes) >= 10


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["deep-list", "deep-object"])
def test_every_post_endpoint_answers_a_deep_json_body_with_400(db, body):
    admin, doc = factories.admin("boss"), factories.physician("doc")
    batch = factories.BatchFactory(name="Any")
    factories.make_pair(batch, "Q?", "A.", "B.")
    for route, reads_body in api_post_routes(batch.pk):
        answers = {}
        for who, user in (("admin", admin), ("physician", doc)):
            resp = client_for(user).post(route, data=body, content_type="application/json")
            answers[who] = resp.status_code
            assert resp.status_code < 500, (route, who, resp.status_code)
            if resp.status_code == 400:
                assert "nested deeper" in resp.json()["detail"] or "parse error" in resp.json()["detail"].lower(), resp.content
        # The role allowed to call it gets past the permission check and meets the parser (views
        # that take no body, like open, never parse it and cannot be hurt by it).
        if reads_body:
            assert 400 in answers.values(), (route, answers)


def test_a_deep_line_in_a_jsonl_import_is_reported_by_number(admin_client, db):
    batch = factories.BatchFactory(name="Deep lines")
    good = json.dumps({"prompt": "Q?", "response_a": "A.", "response_b": "B."})
    body = "\n".join([good, '{"prompt": "Q2?", "metadata": ' + DEEP_OBJECT + "}"])
    resp = admin_client.post(f"/api/batches/{batch.pk}/pairs/", data=body, content_type="application/x-ndjson")
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["line"] == 2 and "nested deeper" in resp.json()["errors"][0]["message"]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_request_limit_is_413(admin_client, db):
    batch = factories.BatchFactory(name="Big")
    body = "\n".join(json.dumps({"prompt": f"Q{i}?", "response_a": "A.", "response_b": "B."}) for i in range(100))
    resp = admin_client.post(f"/api/batches/{batch.pk}/pairs/", data=body, content_type="application/x-ndjson")
    assert resp.status_code == 413 and "import_pairs" in resp.json()["detail"]
    resp = admin_client.post("/api/batches/", data=json.dumps({"name": "x" * 2000}), content_type="application/json")
    assert resp.status_code == 413


def test_depth_check_is_exact_and_iterative():
    assert not json_depth_exceeds([[1]], max_depth=2)
    assert json_depth_exceeds([[[1]]], max_depth=2)
    assert not json_depth_exceeds({"a": [{"b": 1}]}, max_depth=3)
    with pytest.raises(ValueError):
        json_loads_bounded(DEEP)
    assert json_loads_bounded('{"ok": [1, 2]}') == {"ok": [1, 2]}
