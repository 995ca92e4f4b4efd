"""Shared code of the library import commands: read a file, check it, print the preview or the errors."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from annotations.library.importers import FORMATS


class ImportCommand(BaseCommand):
    """`manage.py import_<kind> FILE [--format F] [--dry-run]`: all rows saved, or none."""

    kind = ""

    def add_arguments(self, parser) -> None:
        """FILE, --format, --dry-run."""
        parser.add_argument("file", type=Path, help="CSV, JSON or YAML file (UTF-8).")
        parser.add_argument("--format", choices=FORMATS, help="Format when the extension does not say it.")
        parser.add_argument("--dry-run", action="store_true", help="Check and preview only; save nothing.")

    def check_and_save(self, *, check, save, opts) -> None:
        """Run the service pair; errors become a CommandError listing them."""
        path: Path = opts["file"]
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        try:
            plan = check(content=content, filename=path.name, fmt=opts["format"])
            if not opts["dry_run"]:
                plan = save(plan=plan, actor=None, filename=str(path))
        except AuditError as exc:
            lines = [exc.message, *(f"  {error['message']}" for error in exc.errors)]
            raise CommandError("\n".join(lines)) from None
        verb = "Checked (dry run, nothing saved)" if opts["dry_run"] else "Imported"
        counts = ", ".join(f"{name} {value}" for name, value in plan.counts.items())
        self.stdout.write(f"{verb} {path}: {counts}")
