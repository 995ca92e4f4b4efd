"""HTML routes of the annotations app."""

from django.urls import path

from annotations.views import home

urlpatterns = [
    path("", home.home_view, name="home"),
]
