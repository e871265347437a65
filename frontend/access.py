"""Who may see which page. Every page needs a log-in; dashboard pages need the admin role and
answer 403 (not a redirect) to a logged-in physician, so a bookmark never leaks a page."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from annotation.models import Role
from annotation.permissions import user_role


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
