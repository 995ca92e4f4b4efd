"""The start page: what each role does first."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotations.decorators import access_policy
from annotations.selectors.home import home_summary


@access_policy("authenticated")
@login_required
def home_view(request: HttpRequest) -> HttpResponse:
    """Annotators see their campaigns, researchers the dashboards, admins what to manage."""
    return render(request, "annotations/home.html", home_summary(user=request.user))
