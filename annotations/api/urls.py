"""API routes of the annotations app."""

from django.urls import path

from annotations.api.auth import TokenCreateApi
from annotations.api.exports import ExportDownloadApi
from annotations.api.label_imports import LabelImportCreateApi

urlpatterns: list = [
    path("auth/token/", TokenCreateApi.as_view(), name="api-token"),
    path("exports/<str:kind>/", ExportDownloadApi.as_view(), name="api-export"),
    path("imports/labels/", LabelImportCreateApi.as_view(), name="api-label-import"),
]
