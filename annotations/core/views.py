"""The login page with rate limiting, and the audit log page."""

from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotations.core.audit import audit_event_list
from annotations.core.decorators import role_required
from annotations.core.security import login_failure_record, login_is_locked, login_success_clear

LOCKED_MESSAGE = "Too many failed logins. Wait a few minutes, then try again."


class RateLimitedLoginView(auth_views.LoginView):
    """Django's login page; refuses (429) after repeated failures for one username from one address."""

    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        """Check the lock, log in, and count a failure or clear the count."""
        username = request.POST.get("username", "")
        if login_is_locked(request=request, username=username):
            form = self.get_form()
            return render(request, self.template_name, {"form": form, "locked": LOCKED_MESSAGE}, status=429)
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            login_success_clear(request=request, username=username)
        else:
            login_failure_record(request=request, username=username)
        return response


@role_required("researcher")
def audit_log_view(request: HttpRequest) -> HttpResponse:
    """The audit log of administrative actions, newest first, filterable by action."""
    action = request.GET.get("action", "")[:100]
    page = Paginator(audit_event_list(action=action or None), 100).get_page(request.GET.get("page"))
    return render(request, "annotations/auditevent_list.html", {"page": page, "action": action})
