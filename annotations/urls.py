"""HTML routes of the annotations app."""

from django.urls import path

from annotations.views import (
    campaigns,
    dashboards,
    exports,
    home,
    label_imports,
    library,
    promptsets,
    security,
)

urlpatterns = [
    path("", home.home_view, name="home"),
    path("library/templates/", library.template_list_view, name="library_templates"),
    path("library/groups/", library.group_list_view, name="library_groups"),
    path(
        "library/templates/upload/",
        library.library_upload_view,
        {"kind": "templates"},
        name="library_upload_templates",
    ),
    path(
        "library/groups/upload/",
        library.library_upload_view,
        {"kind": "groups"},
        name="library_upload_groups",
    ),
    path("prompt-sets/", promptsets.promptset_list_view, name="promptset_list"),
    path("prompt-sets/new/", promptsets.promptset_build_view, name="promptset_build"),
    path("prompt-sets/<id:pk>/", promptsets.promptset_detail_view, name="promptset_detail"),
    path("prompt-sets/<id:pk>/prompts/", promptsets.prompt_list_view, name="prompt_list"),
    path("prompt-sets/<id:pk>/edit/", promptsets.promptset_revise_view, name="promptset_revise"),
    path("campaigns/", campaigns.campaign_list_view, name="campaign-list"),
    path("campaigns/new/", campaigns.campaign_create_view, name="campaign-create"),
    path("campaigns/<id:campaign_id>/", campaigns.campaign_detail_view, name="campaign-detail"),
    path("campaigns/<id:campaign_id>/edit/", campaigns.campaign_edit_view, name="campaign-edit"),
    path("campaigns/<id:campaign_id>/label/", campaigns.campaign_label_view, name="campaign-label"),
    path(
        "campaigns/<id:campaign_id>/adjudicate/",
        campaigns.campaign_adjudicate_view,
        name="campaign-adjudicate",
    ),
    path("dashboards/", dashboards.dashboard_view, name="dashboards"),
    path("exports/", exports.export_form_view, name="export-form"),
    path("imports/labels/", label_imports.label_import_view, name="label-import"),
    path("audit-log/", security.audit_log_view, name="audit-log"),
]
