from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from annotation.labeling.hotsql import token_user


class ProfileTokenAuthentication(TokenAuthentication):
    """Token auth that loads the user and profile in one hand-written query: every API request
    checks the role, and on the judging hot path the ORM query cost more to build than to run."""

    def authenticate_credentials(self, key):
        user = token_user(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token. Create one with `manage.py drf_create_token USERNAME`.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("This account is deactivated.")
        return (user, key)
