"""API routes of the inference app."""

from django.urls import path

from inference.api import score_views, views

urlpatterns = [
    path("endpoints/", views.EndpointListApi.as_view(), name="api-endpoint-list"),
    path("endpoints/<id:pk>/", views.EndpointDetailApi.as_view(), name="api-endpoint-detail"),
    path("endpoints/<id:pk>/check/", views.EndpointCheckApi.as_view(), name="api-endpoint-check"),
    path("runs/", views.RunListApi.as_view(), name="api-run-list"),
    path("runs/import/", views.RunImportApi.as_view(), name="api-run-import"),
    path("runs/<id:pk>/", views.RunDetailApi.as_view(), name="api-run-detail"),
    path("runs/<id:pk>/progress/", views.RunProgressApi.as_view(), name="api-run-progress"),
    path("runs/<id:pk>/cancel/", views.RunCancelApi.as_view(), name="api-run-cancel"),
    path("runs/<id:pk>/resume/", views.RunResumeApi.as_view(), name="api-run-resume"),
    path("runs/<id:pk>/retry/", views.RunRetryApi.as_view(), name="api-run-retry"),
    path("runs/<id:pk>/outputs/", views.RunOutputListApi.as_view(), name="api-run-outputs"),
    path("scorers/", score_views.ScorerListApi.as_view(), name="api-scorer-list"),
    path("scorers/<id:pk>/", score_views.ScorerDetailApi.as_view(), name="api-scorer-detail"),
    path("score-runs/", score_views.ScoreRunListApi.as_view(), name="api-score-run-list"),
    path("score-runs/<id:pk>/", score_views.ScoreRunDetailApi.as_view(), name="api-score-run-detail"),
    path(
        "score-runs/<id:pk>/progress/",
        score_views.ScoreRunProgressApi.as_view(),
        name="api-score-run-progress",
    ),
    path("score-runs/<id:pk>/cancel/", score_views.ScoreRunCancelApi.as_view(), name="api-score-run-cancel"),
    path("score-runs/<id:pk>/resume/", score_views.ScoreRunResumeApi.as_view(), name="api-score-run-resume"),
    path("score-runs/<id:pk>/retry/", score_views.ScoreRunRetryApi.as_view(), name="api-score-run-retry"),
    path(
        "score-runs/<id:pk>/scores/", score_views.ScoreRunScoreListApi.as_view(), name="api-score-run-scores"
    ),
]
