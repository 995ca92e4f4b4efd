"""What the start page shows for each role."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotations.core.decorators import access_policy
from annotations.core.roles import user_is_admin, user_is_annotator, user_is_researcher
from annotations.models import Campaign, PromptSet, PromptTemplate
from inference.models import GenerationRun, ModelEndpoint


def home_summary(*, user) -> dict:
    """The start page's blocks for `user`: my campaigns, dashboards, and management counts."""
    summary: dict = {}
    if user_is_annotator(user):
        summary["my_campaigns"] = (
            Campaign.objects.filter(annotators=user, status=Campaign.Status.ACTIVE)
            .annotate(my_labels=Count("items__labels", filter=Q(items__labels__annotator=user)))
            .order_by("name")
        )
    if user_is_researcher(user):
        summary["campaigns"] = Campaign.objects.order_by("-created_at")[:20]
    if user_is_admin(user):
        summary["counts"] = {
            "templates": PromptTemplate.objects.count(),
            "prompt_sets": PromptSet.objects.count(),
            "endpoints": ModelEndpoint.objects.count(),
            "runs": GenerationRun.objects.count(),
        }
    return summary


@access_policy("authenticated")
@login_required
def home_view(request: HttpRequest) -> HttpResponse:
    """Annotators see their campaigns, researchers the dashboards, admins what to manage."""
    return render(request, "annotations/home.html", home_summary(user=request.user))
