"""HTML routes of the inference app."""

urlpatterns: list = []
