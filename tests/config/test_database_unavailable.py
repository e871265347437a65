"""A request that loses its database answers 503 with a JSON message and Retry-After, not 500;
an integrity error is still the bug it is."""

import pytest
from django.db import IntegrityError, InterfaceError, OperationalError

from annotation.labeling import apis

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("error", [OperationalError("server closed the connection unexpectedly"),
                                   InterfaceError("connection already closed")])
def test_a_lost_database_is_a_clear_503(physician_client, monkeypatch, error):
    def lease(**kwargs):
        raise error

    monkeypatch.setattr(apis, "pair_lease_next", lease)
    response = physician_client.get("/api/next/")
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable" and "Retry" in response.json()["detail"]
    assert response["Retry-After"] == "5"


def test_an_integrity_error_is_not_disguised_as_unavailability(physician_client, monkeypatch):
    def lease(**kwargs):
        raise IntegrityError("duplicate key")

    monkeypatch.setattr(apis, "pair_lease_next", lease)
    physician_client.raise_request_exception = True
    with pytest.raises(IntegrityError):
        physician_client.get("/api/next/")
