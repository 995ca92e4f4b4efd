"""HTML routes of the annotations app."""

from django.urls import path, re_path

from annotations.views import home, library, promptsets

urlpatterns = [
    path("", home.home_view, name="home"),
    path("library/templates/", library.template_list_view, name="library_templates"),
    path("library/groups/", library.group_list_view, name="library_groups"),
    re_path(
        r"^library/(?P<kind>templates|groups)/upload/$", library.library_upload_view, name="library_upload"
    ),
    path("prompt-sets/", promptsets.promptset_list_view, name="promptset_list"),
    path("prompt-sets/new/", promptsets.promptset_build_view, name="promptset_build"),
    path("prompt-sets/<int:pk>/", promptsets.promptset_detail_view, name="promptset_detail"),
    path("prompt-sets/<int:pk>/prompts/", promptsets.prompt_list_view, name="prompt_list"),
    path("prompt-sets/<int:pk>/edit/", promptsets.promptset_revise_view, name="promptset_revise"),
]
