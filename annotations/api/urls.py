"""API routes of the annotations app."""

urlpatterns: list = []
