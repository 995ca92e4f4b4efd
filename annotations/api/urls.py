"""API routes of the annotations app."""

from django.urls import path

from annotations.api import campaigns, library, stats
from annotations.api.auth import TokenCreateApi
from annotations.api.exports import ExportDownloadApi
from annotations.api.label_imports import LabelImportCreateApi

urlpatterns: list = [
    path("templates/", library.TemplateListApi.as_view(), name="api-templates"),
    path("templates/import/", library.TemplateImportApi.as_view(), name="api-templates-import"),
    path("groups/", library.GroupListApi.as_view(), name="api-groups"),
    path("groups/import/", library.GroupImportApi.as_view(), name="api-groups-import"),
    path("prompt-sets/", library.PromptSetListApi.as_view(), name="api-promptsets"),
    path("prompt-sets/<id:pk>/", library.PromptSetDetailApi.as_view(), name="api-promptset-detail"),
    path("prompt-sets/<id:pk>/revise/", library.PromptSetReviseApi.as_view(), name="api-promptset-revise"),
    path("prompt-sets/<id:pk>/prompts/", library.PromptListApi.as_view(), name="api-promptset-prompts"),
    path("campaigns/", campaigns.CampaignListApi.as_view(), name="api-campaign-list"),
    path("campaigns/<id:campaign_id>/", campaigns.CampaignDetailApi.as_view(), name="api-campaign-detail"),
    path(
        "campaigns/<id:campaign_id>/stats/", campaigns.CampaignStatsApi.as_view(), name="api-campaign-stats"
    ),
    path(
        "campaigns/<id:campaign_id>/progress/",
        campaigns.CampaignProgressApi.as_view(),
        name="api-campaign-progress",
    ),
    path("campaigns/<id:campaign_id>/next/", campaigns.AssignmentNextApi.as_view(), name="api-campaign-next"),
    path("campaigns/<id:campaign_id>/labels/", campaigns.LabelListApi.as_view(), name="api-campaign-labels"),
    path(
        "campaigns/<id:campaign_id>/labels/<id:item_id>/",
        campaigns.LabelDetailApi.as_view(),
        name="api-campaign-label",
    ),
    path("campaigns/<id:campaign_id>/skip/", campaigns.AssignmentSkipApi.as_view(), name="api-campaign-skip"),
    path(
        "campaigns/<id:campaign_id>/adjudication/",
        campaigns.AdjudicationQueueApi.as_view(),
        name="api-campaign-adjudication",
    ),
    path(
        "campaigns/<id:campaign_id>/adjudication/<id:item_id>/",
        campaigns.ItemAdjudicateApi.as_view(),
        name="api-item-adjudicate",
    ),
    path("stats/disparity/", stats.StatsDisparityApi.as_view(), name="api-stats-disparity"),
    path("stats/agreement/", stats.StatsAgreementApi.as_view(), name="api-stats-agreement"),
    path("auth/token/", TokenCreateApi.as_view(), name="api-token"),
    path("exports/<str:kind>/", ExportDownloadApi.as_view(), name="api-export"),
    path("imports/labels/", LabelImportCreateApi.as_view(), name="api-label-import"),
]
