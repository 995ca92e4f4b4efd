"""python manage.py import_scores FILE --scorer NAME: judgements made elsewhere, as one score run."""

from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from annotations.core.uploads import upload_read
from inference.models import Scorer
from inference.services.score_imports import scores_import


def audit_error_lines(exc: AuditError) -> str:
    """The error's message, then one line per itemised problem: its row (if any), its column and what."""
    lines = [exc.message]
    for error in exc.errors:
        where = [f"row {error['row']}"] if error.get("row") is not None else []
        if error.get("field"):
            where.append(f"column {error['field']}" if error.get("row") is not None else error["field"])
        lines.append(f"  {', '.join(where) or '-'}: {error['message']}")
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Import scores of an imported scorer from CSV or JSONL: output_id (or prompt, model, [sample], "
        "[run]) with category and/or probability and/or probabilities (p_<key> columns in CSV), "
        "[flagged], [raw]; all or nothing, every problem reported with its row and column."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A .csv or .jsonl file.")
        parser.add_argument("--scorer", required=True, help="The name of a scorer of kind imported.")
        parser.add_argument("--format", choices=["csv", "jsonl"], help="Default: from the file's extension.")

    def handle(self, *args, **opts):
        path = Path(opts["file"])
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        scorer = Scorer.objects.filter(name=opts["scorer"]).first()
        if scorer is None:
            raise CommandError(
                f"No scorer named {opts['scorer']!r}; register one with "
                f"`manage.py scorer_add {opts['scorer']} --kind imported [--scheme KEY]`."
            )
        try:
            with path.open("rb") as handle:
                content = upload_read(File(handle, name=path.name))  # the one size check of uploads
            run = scores_import(
                scorer=scorer, content=content, filename=path.name, fmt=opts["format"], actor=None
            )
        except AuditError as exc:
            raise CommandError(audit_error_lines(exc)) from None
        self.stdout.write(
            f"Imported {run.scores.count()} scores of {scorer.name} (version {run.scorer_version}) "
            f"as score run {run.pk} ({run.name})."
        )
