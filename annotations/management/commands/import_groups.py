"""python manage.py import_groups FILE: add or update axes, groups and members from CSV, JSON or YAML."""

from annotations.library.services import group_import, group_upload_check
from annotations.management.commands._library import ImportCommand


class Command(ImportCommand):
    help = "Import groups and their members (CSV, JSON or YAML: docs/admins.md). All rows are saved, or none."

    def handle(self, *args, **opts) -> None:
        self.check_and_save(check=group_upload_check, save=group_import, opts=opts)
