"""API routes of the annotations app."""

from django.urls import path

from annotations.api import stats

urlpatterns: list = [
    path("stats/disparity/", stats.StatsDisparityApi.as_view(), name="api-stats-disparity"),
    path("stats/agreement/", stats.StatsAgreementApi.as_view(), name="api-stats-agreement"),
]
