"""Who may see which page. Every page needs a log-in; dashboard pages need the admin role and
answer 403 (not a redirect) to a logged-in physician, so a bookmark never leaks a page.
Adjudication pages also admit senior physicians holding the adjudication right."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from annotation.models import Role
from annotation.permissions import CanAdjudicate, IsActiveUser, user_role


def active_user_required(view):
    """Any role, but an active account: a deactivated user's old session reads nothing."""
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if user_role(request.user) is None:
            raise PermissionDenied(IsActiveUser.message)
        return view(request, *args, **kwargs)

    return wrapped


def admin_required(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if user_role(request.user) != Role.ADMIN:
            raise PermissionDenied("The dashboard needs the admin role.")
        return view(request, *args, **kwargs)

    return wrapped


def physician_required(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if user_role(request.user) != Role.PHYSICIAN:
            raise PermissionDenied("Labeling needs an active physician account.")
        return view(request, *args, **kwargs)

    return wrapped


def adjudicator_required(view):
    """Admins and physicians with profile.can_adjudicate; the rule is the API's (CanAdjudicate),
    so the browser and the API can never disagree on who may settle a dispute."""
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not CanAdjudicate().has_permission(request, None):
            raise PermissionDenied(CanAdjudicate.message)
        return view(request, *args, **kwargs)

    return wrapped
