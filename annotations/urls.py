"""HTML routes of the annotations app."""

from django.urls import path

from annotations.views import exports, home, label_imports, security

urlpatterns = [
    path("", home.home_view, name="home"),
    path("exports/", exports.export_form_view, name="export-form"),
    path("imports/labels/", label_imports.label_import_view, name="label-import"),
    path("audit-log/", security.audit_log_view, name="audit-log"),
]
