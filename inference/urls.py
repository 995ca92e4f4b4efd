"""HTML routes of the inference app."""

from django.urls import path

from inference import views

app_name = "inference"

urlpatterns = [
    path("endpoints/", views.endpoint_list_view, name="endpoint_list"),
    path("endpoints/new/", views.endpoint_create_view, name="endpoint_create"),
    path("endpoints/<id:pk>/edit/", views.endpoint_edit_view, name="endpoint_edit"),
    path("endpoints/<id:pk>/check/", views.endpoint_check_view, name="endpoint_check"),
    path("runs/", views.run_list_view, name="run_list"),
    path("runs/new/", views.run_create_view, name="run_create"),
    path("runs/import/", views.run_import_view, name="run_import"),
    path("runs/<id:pk>/", views.run_detail_view, name="run_detail"),
    path("runs/<id:pk>/progress/", views.run_progress_view, name="run_progress"),
    path("runs/<id:pk>/cancel/", views.run_cancel_view, name="run_cancel"),
    path("runs/<id:pk>/resume/", views.run_resume_view, name="run_resume"),
    path("runs/<id:pk>/retry/", views.run_retry_view, name="run_retry"),
]
