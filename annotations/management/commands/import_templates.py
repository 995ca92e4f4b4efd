"""python manage.py import_templates FILE: add or update prompt templates from CSV, JSON or YAML."""

from annotations.library.services import template_import, template_upload_check
from annotations.management.commands._library import ImportCommand


class Command(ImportCommand):
    help = "Import prompt templates (CSV, JSON or YAML: docs/admins.md). All rows are saved, or none."

    def handle(self, *args, **opts) -> None:
        self.check_and_save(check=template_upload_check, save=template_import, opts=opts)
