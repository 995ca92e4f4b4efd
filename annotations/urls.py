"""HTML routes of the annotations app."""

from django.urls import path

from annotations.views import campaigns, home

urlpatterns = [
    path("", home.home_view, name="home"),
    path("campaigns/", campaigns.campaign_list_view, name="campaign-list"),
    path("campaigns/new/", campaigns.campaign_create_view, name="campaign-create"),
    path("campaigns/<int:campaign_id>/", campaigns.campaign_detail_view, name="campaign-detail"),
    path("campaigns/<int:campaign_id>/edit/", campaigns.campaign_edit_view, name="campaign-edit"),
    path("campaigns/<int:campaign_id>/label/", campaigns.campaign_label_view, name="campaign-label"),
    path(
        "campaigns/<int:campaign_id>/adjudicate/",
        campaigns.campaign_adjudicate_view,
        name="campaign-adjudicate",
    ),
]
