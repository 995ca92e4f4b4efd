"""HTML routes of the annotations app."""

from django.urls import path

from annotations.views import dashboards, home

urlpatterns = [
    path("", home.home_view, name="home"),
    path("dashboards/", dashboards.dashboard_view, name="dashboards"),
]
