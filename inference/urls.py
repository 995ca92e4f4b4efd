"""HTML routes of the inference app."""

from django.urls import path

from inference import score_views, views

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
    path("scorers/", score_views.scorer_list_view, name="scorer_list"),
    path("scorers/new/", score_views.scorer_create_view, name="scorer_create"),
    path("scorers/<id:pk>/", score_views.scorer_detail_view, name="scorer_detail"),
    path("scorers/<id:pk>/edit/", score_views.scorer_edit_view, name="scorer_edit"),
    path("score-runs/", score_views.score_run_list_view, name="score_run_list"),
    path("score-runs/new/", score_views.score_run_create_view, name="score_run_create"),
    path("score-runs/<id:pk>/", score_views.score_run_detail_view, name="score_run_detail"),
    path("score-runs/<id:pk>/progress/", score_views.score_run_progress_view, name="score_run_progress"),
    path("score-runs/<id:pk>/cancel/", score_views.score_run_cancel_view, name="score_run_cancel"),
    path("score-runs/<id:pk>/resume/", score_views.score_run_resume_view, name="score_run_resume"),
    path("score-runs/<id:pk>/retry/", score_views.score_run_retry_view, name="score_run_retry"),
]
