"""Schemathesis against our own OpenAPI schema, as an admin and as a physician: generated
requests for every operation, a bounded number of examples each (CI-sized, derandomised), and
no response may be a 5xx, carry an undeclared content type, or break the schema it declares.

The schema is built in-process (drf-spectacular's generator, the same one /api/schema/ serves)
and requests go straight to the WSGI app, inside the test's database transaction."""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from annotation import models as m
from tests import factories

# Examples per operation and role: bounded for CI (about 4 minutes on two cores); raise it locally.
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", 8))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
app = get_wsgi_application()


@pytest.fixture
def tokens(db, tmp_path, django_settings_media):
    """A small world for the generated ids to land on: a batch in each state, pairs, a physician
    with a lease and a judgment, an export."""
    from annotation.exports.services import export_create

    cardio = factories.SpecialtyFactory(name="Cardiology", slug="cardiology")
    boss = factories.admin("fuzz_admin")
    doc = factories.physician("fuzz_doc", cardio)
    open_batch = factories.BatchFactory(name="fuzz open", specialty=cardio, state=m.BatchState.OPEN)
    pairs = factories.make_pairs(open_batch, 3)
    factories.add_judgment(pairs[0], doc, 1)
    factories.BatchFactory(name="fuzz draft", specialty=cardio)
    closed, _, _ = factories.judged_batch(n_pairs=4, n_raters=3, seed=21)
    export_create(batch=closed, params=None, created_by=boss, include_agreement=False)
    return {role: Token.objects.create(user=user).key for role, user in (("admin", boss), ("physician", doc))}


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Django's WSGI handler closes the database connection when a request ends; inside a test
    that would close the test's transaction. Django's test client unhooks the same signal."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def django_settings_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.AGREEMENT_BOOTSTRAP_RESAMPLES = 10


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "physician"])
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_no_schema_break(case, tokens, role):
    case.call_and_validate(app=app, headers={"Authorization": f"Token {tokens[role]}"}, checks=CHECKS)
