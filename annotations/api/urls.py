"""API routes of the annotations app."""

from django.urls import path

from annotations.api import library

urlpatterns: list = [
    path("templates/", library.TemplateListApi.as_view(), name="api-templates"),
    path("templates/import/", library.TemplateImportApi.as_view(), name="api-templates-import"),
    path("groups/", library.GroupListApi.as_view(), name="api-groups"),
    path("groups/import/", library.GroupImportApi.as_view(), name="api-groups-import"),
    path("prompt-sets/", library.PromptSetListApi.as_view(), name="api-promptsets"),
    path("prompt-sets/<int:pk>/", library.PromptSetDetailApi.as_view(), name="api-promptset-detail"),
    path("prompt-sets/<int:pk>/revise/", library.PromptSetReviseApi.as_view(), name="api-promptset-revise"),
    path("prompt-sets/<int:pk>/prompts/", library.PromptListApi.as_view(), name="api-promptset-prompts"),
]
