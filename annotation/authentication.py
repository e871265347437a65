from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework import exceptions


class ProfileTokenAuthentication(TokenAuthentication):
    """Token auth that loads the user's profile in the same query: every API request checks
    the role, and the judging hot path should not pay a second query for it."""

    def authenticate_credentials(self, key):
        try:
            token = Token.objects.select_related("user", "user__profile").get(key=key)
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token. Create one with `manage.py drf_create_token USERNAME`.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This account is deactivated.")
        return (token.user, token)
