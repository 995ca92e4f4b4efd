"""python manage.py import_outputs FILE --prompt-set S --model NAME: outputs generated elsewhere."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from inference.management.commands.generate import _prompt_set
from inference.services.imports import outputs_import


class Command(BaseCommand):
    help = (
        "Import outputs from CSV or JSONL (prompt_key or prompt, output, [sample_index], [finish_reason]) "
        "as a new run; all or nothing, every problem reported with its row."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A .csv or .jsonl file.")
        parser.add_argument("--prompt-set", required=True, help="Prompt set id or name (latest version).")
        parser.add_argument("--model", required=True, help="The model name the outputs come from.")
        parser.add_argument("--format", choices=["csv", "jsonl"], help="Default: from the file's extension.")
        parser.add_argument("--name", default="", help="Run name.")

    def handle(self, *args, **opts):
        path = Path(opts["file"])
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        try:
            run = outputs_import(
                prompt_set=_prompt_set(opts["prompt_set"]),
                model_name=opts["model"],
                content=path.read_bytes(),
                filename=path.name,
                fmt=opts["format"],
                run_name=opts["name"],
                actor=None,
            )
        except AuditError as exc:
            lines = [f"  row {e.get('row')}, {e.get('field') or '-'}: {e['message']}" for e in exc.errors]
            raise CommandError("\n".join([exc.message, *lines])) from None
        self.stdout.write(f"Imported {run.outputs.count()} outputs as run {run.pk} ({run.name}).")
