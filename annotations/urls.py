"""Routes of the annotations app: `urlpatterns` (pages) and `api_urlpatterns` (the REST API, under /api/).

Ids in paths use the `id` converter (annotations/core/ids.py): anything outside 1..2^63-1 is a 404.
"""

from django.urls import path

from annotations.analysis import api as analysis_api
from annotations.analysis import home as analysis_home
from annotations.analysis import views as analysis_views
from annotations.core import views as core_views
from annotations.core.api import TokenCreateApi, TokenListApi, TokenRevokeApi
from annotations.exchange import views as exchange_views
from annotations.exchange.api import ExportDownloadApi, LabelImportCreateApi
from annotations.labelling import api as labelling_api
from annotations.labelling import views as labelling_views
from annotations.library import api as library_api
from annotations.library import views as library_views

urlpatterns = [
    path("", analysis_home.home_view, name="home"),
    path("library/templates/", library_views.template_list_view, name="library_templates"),
    path("library/groups/", library_views.group_list_view, name="library_groups"),
    path(
        "library/templates/upload/",
        library_views.library_upload_view,
        {"kind": "templates"},
        name="library_upload_templates",
    ),
    path(
        "library/groups/upload/",
        library_views.library_upload_view,
        {"kind": "groups"},
        name="library_upload_groups",
    ),
    path("prompt-sets/", library_views.promptset_list_view, name="promptset_list"),
    path("prompt-sets/new/", library_views.promptset_build_view, name="promptset_build"),
    path("prompt-sets/<id:pk>/", library_views.promptset_detail_view, name="promptset_detail"),
    path("prompt-sets/<id:pk>/prompts/", library_views.prompt_list_view, name="prompt_list"),
    path("prompt-sets/<id:pk>/edit/", library_views.promptset_revise_view, name="promptset_revise"),
    path("campaigns/", labelling_views.campaign_list_view, name="campaign-list"),
    path("campaigns/new/", labelling_views.campaign_create_view, name="campaign-create"),
    path("campaigns/<id:campaign_id>/", labelling_views.campaign_detail_view, name="campaign-detail"),
    path("campaigns/<id:campaign_id>/edit/", labelling_views.campaign_edit_view, name="campaign-edit"),
    path("campaigns/<id:campaign_id>/label/", labelling_views.campaign_label_view, name="campaign-label"),
    path(
        "campaigns/<id:campaign_id>/adjudicate/",
        labelling_views.campaign_adjudicate_view,
        name="campaign-adjudicate",
    ),
    path("dashboards/", analysis_views.dashboard_view, name="dashboards"),
    path("exports/", exchange_views.export_form_view, name="export-form"),
    path("imports/labels/", exchange_views.label_import_view, name="label-import"),
    path("audit-log/", core_views.audit_log_view, name="audit-log"),
    path("account/tokens/", core_views.tokens_view, name="account-tokens"),
    path("account/tokens/<id:token_id>/revoke/", core_views.token_revoke_view, name="account-token-revoke"),
]

api_urlpatterns = [
    path("templates/", library_api.TemplateListApi.as_view(), name="api-templates"),
    path("templates/import/", library_api.TemplateImportApi.as_view(), name="api-templates-import"),
    path("groups/", library_api.GroupListApi.as_view(), name="api-groups"),
    path("groups/import/", library_api.GroupImportApi.as_view(), name="api-groups-import"),
    path("prompt-sets/", library_api.PromptSetListApi.as_view(), name="api-promptsets"),
    path("prompt-sets/<id:pk>/", library_api.PromptSetDetailApi.as_view(), name="api-promptset-detail"),
    path(
        "prompt-sets/<id:pk>/revise/", library_api.PromptSetReviseApi.as_view(), name="api-promptset-revise"
    ),
    path("prompt-sets/<id:pk>/prompts/", library_api.PromptListApi.as_view(), name="api-promptset-prompts"),
    path("campaigns/", labelling_api.CampaignListApi.as_view(), name="api-campaign-list"),
    path(
        "campaigns/selection-count/",
        labelling_api.CampaignSelectionCountApi.as_view(),
        name="api-campaign-selection-count",
    ),
    path(
        "campaigns/gold-search/",
        labelling_api.CampaignGoldSearchApi.as_view(),
        name="api-campaign-gold-search",
    ),
    path(
        "campaigns/<id:campaign_id>/", labelling_api.CampaignDetailApi.as_view(), name="api-campaign-detail"
    ),
    path(
        "campaigns/<id:campaign_id>/stats/",
        labelling_api.CampaignStatsApi.as_view(),
        name="api-campaign-stats",
    ),
    path(
        "campaigns/<id:campaign_id>/progress/",
        labelling_api.CampaignProgressApi.as_view(),
        name="api-campaign-progress",
    ),
    path(
        "campaigns/<id:campaign_id>/next/",
        labelling_api.AssignmentNextApi.as_view(),
        name="api-campaign-next",
    ),
    path(
        "campaigns/<id:campaign_id>/labels/", labelling_api.LabelListApi.as_view(), name="api-campaign-labels"
    ),
    path(
        "campaigns/<id:campaign_id>/labels/<id:item_id>/",
        labelling_api.LabelDetailApi.as_view(),
        name="api-campaign-label",
    ),
    path(
        "campaigns/<id:campaign_id>/skip/",
        labelling_api.AssignmentSkipApi.as_view(),
        name="api-campaign-skip",
    ),
    path(
        "campaigns/<id:campaign_id>/adjudication/",
        labelling_api.AdjudicationQueueApi.as_view(),
        name="api-campaign-adjudication",
    ),
    path(
        "campaigns/<id:campaign_id>/adjudication/<id:item_id>/",
        labelling_api.ItemAdjudicateApi.as_view(),
        name="api-item-adjudicate",
    ),
    path("stats/disparity/", analysis_api.StatsDisparityApi.as_view(), name="api-stats-disparity"),
    path("stats/agreement/", analysis_api.StatsAgreementApi.as_view(), name="api-stats-agreement"),
    path("stats/scorers/", analysis_api.StatsScorersApi.as_view(), name="api-stats-scorers"),
    path(
        "stats/machine-assisted/",
        analysis_api.StatsMachineAssistedApi.as_view(),
        name="api-stats-machine-assisted",
    ),
    path("stats/plan/", analysis_api.StatsPlanApi.as_view(), name="api-stats-plan"),
    path("auth/token/", TokenCreateApi.as_view(), name="api-token"),
    path("auth/tokens/", TokenListApi.as_view(), name="api-tokens"),
    path("auth/tokens/<id:token_id>/", TokenRevokeApi.as_view(), name="api-token-revoke"),
    path("exports/<str:kind>/", ExportDownloadApi.as_view(), name="api-export"),
    path("imports/labels/", LabelImportCreateApi.as_view(), name="api-label-import"),
]
