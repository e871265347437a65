import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests import factories


@pytest.fixture
def specialty(db):
    return factories.SpecialtyFactory(name="Cardiology", slug="cardiology")


@pytest.fixture
def physician(db, specialty):
    return factories.physician("dr_house", specialty)


@pytest.fixture
def admin_user(db):
    return factories.admin("admin")


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def physician_client(physician):
    return client_for(physician)


@pytest.fixture
def admin_client(admin_user):
    return client_for(admin_user)


@pytest.fixture
def anon_client():
    return APIClient()
