"""python manage.py export_labels [--kind K] [--format csv|jsonl|parquet] [--campaign ID] [-o FILE]"""

import sys

from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from annotations.exchange.exports import ExportFormat, ExportKind, export_open


class Command(BaseCommand):
    help = (
        "Export labels (one row per label) or outputs with their final label, streamed to a file or stdout."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=ExportKind.values, default=ExportKind.LABELS)
        parser.add_argument("--format", choices=ExportFormat.values, default=ExportFormat.CSV)
        parser.add_argument("--campaign", type=int, help="Only this campaign (id); default all.")
        parser.add_argument("-o", "--output", default="-", help="File to write; '-' (default) is stdout.")

    def handle(self, *args, **opts):
        try:
            export = export_open(
                actor=None, kind=opts["kind"], file_format=opts["format"], campaign_id=opts["campaign"]
            )
        except AuditError as exc:
            raise CommandError(exc.message) from None
        if opts["output"] == "-":
            out = getattr(self.stdout, "_out", sys.stdout)
            target = out.buffer if hasattr(out, "buffer") else None
            for chunk in export.chunks:
                if target is not None:
                    target.write(chunk)
                else:
                    out.write(chunk.decode())
            out.flush()
            return
        written = 0
        with open(opts["output"], "wb") as handle:  # noqa: PTH123 - a plain binary file
            for chunk in export.chunks:
                handle.write(chunk)
                written += len(chunk)
        self.stderr.write(f"{export.filename}: {written} bytes written to {opts['output']}")
