from rest_framework.permissions import BasePermission

from annotation.models import Role


def user_role(user) -> str | None:
    if not user or not user.is_authenticated:
        return None
    profile = getattr(user, "profile", None)
    if profile is None or not profile.is_active:
        return None
    return profile.role


class IsActiveUser(BasePermission):
    """Logged in with an active account of any role. The default for the API: a deactivated
    account reads nothing, even with a session or token issued before it was deactivated."""

    message = "This needs an active account; a deactivated account reads nothing."

    def has_permission(self, request, view) -> bool:
        return user_role(request.user) is not None


class IsAdminRole(BasePermission):
    message = "This needs the admin role."

    def has_permission(self, request, view) -> bool:
        return user_role(request.user) == Role.ADMIN


class IsPhysician(BasePermission):
    message = "This needs an active physician account."

    def has_permission(self, request, view) -> bool:
        return user_role(request.user) == Role.PHYSICIAN


class CanAdjudicate(BasePermission):
    message = "Adjudication needs the admin role or a senior physician's adjudication right."

    def has_permission(self, request, view) -> bool:
        role = user_role(request.user)
        return role == Role.ADMIN or (role is not None and request.user.profile.can_adjudicate)
