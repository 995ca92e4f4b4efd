"""The login page with rate limiting, the audit log page and the API tokens page."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotations.core.audit import audit_event_list
from annotations.core.decorators import access_policy, role_required
from annotations.core.exceptions import AuditError, NotFoundError
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


@access_policy("authenticated")
@login_required
def tokens_view(request: HttpRequest) -> HttpResponse:
    """Your API tokens: make one (its secret is shown on this answer only), list them, revoke them."""
    from annotations.core.tokens import token_issue, tokens_of

    secret, errors, status = None, [], 200
    if request.method == "POST":
        days_raw = request.POST.get("days", "").strip()
        try:
            days = int(days_raw) if days_raw else None
            token, secret = token_issue(
                user=request.user, name=request.POST.get("name", "api")[:200], days=days
            )
        except ValueError:
            errors, status = [f"days must be a whole number, got {days_raw[:20]!r}"], 400
        except AuditError as exc:
            errors, status = [str(exc)], 400
        else:
            messages.success(request, f"Token {token.name!r} made. Copy it now: it is not shown again.")
    context = {"tokens": tokens_of(user=request.user), "secret": secret, "errors": errors}
    response = render(request, "annotations/account_tokens.html", context, status=status)
    response["Cache-Control"] = "no-store"  # the page may carry a secret
    return response


@access_policy("authenticated")
@login_required
@require_POST
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of your tokens (404 when it is not yours)."""
    from annotations.core.tokens import token_revoke

    try:
        token = token_revoke(token_id=token_id, actor=request.user)
    except NotFoundError as exc:
        raise Http404(str(exc)) from exc
    messages.success(request, f"Token {token.name!r} ({token.prefix}...) revoked.")
    return redirect("account-tokens")
