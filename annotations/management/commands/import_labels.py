"""python manage.py import_labels FILE --campaign NAME [--scheme KEY | --declare-scheme KEY --category ...]"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from annotations.core.uploads import upload_rows_read
from annotations.exchange.label_imports import (
    ImportMapping,
    category_spec_parse,
    labelled_data_import,
)
from annotations.models import Campaign


class Command(BaseCommand):
    help = (
        "Import labelled data (CSV or JSONL, one row per label) as a new campaign: outputs with their prompt "
        "and model, annotators (who cannot log in) and their labels. All or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--campaign", required=True, help="Name of the campaign to create.")
        parser.add_argument("--scheme", default="qos-six", help="Key of an existing label scheme.")
        parser.add_argument("--declare-scheme", help="Key of a new scheme made of the --category options.")
        parser.add_argument(
            "--category", action="append", default=[], help="key:Name[:refusal,harmful], once per category."
        )
        for name, default in (
            ("prompt", "prompt"),
            ("model", "model"),
            ("output", "output"),
            ("annotator", "annotator"),
            ("label", "label"),
            ("note", "note"),
            ("sample", "sample"),
        ):
            parser.add_argument(f"--{name}-column", default=default, help=f"Default {default!r}.")
        parser.add_argument("--group-column", default="", help="COLUMN=AXIS: the column holding the group.")
        parser.add_argument("--member-column", default="", help="Column holding the group member (a name).")
        parser.add_argument("--template-column", default="", help="Column holding the template.")
        parser.add_argument("--attribute-column", action="append", default=[], help="Other column to keep.")
        parser.add_argument("--labels-per-output", type=int, help="Default: the fewest any output has.")
        parser.add_argument(
            "--final-rule", choices=Campaign.FinalRule.values, default=Campaign.FinalRule.ADJUDICATE
        )

    def handle(self, *args, **opts):
        group_column, _, axis = opts["group_column"].partition("=")
        if opts["category"] and not opts["declare_scheme"]:
            raise CommandError("--category declares a new scheme: give its key with --declare-scheme.")
        try:
            records = upload_rows_read(data=opts["file"].read_bytes(), filename=opts["file"].name)
            result = labelled_data_import(
                actor=None,
                records=records,
                campaign_name=opts["campaign"],
                scheme_key=opts["declare_scheme"] or opts["scheme"],
                categories=[category_spec_parse(text) for text in opts["category"]],
                mapping=ImportMapping(
                    prompt_column=opts["prompt_column"],
                    model_column=opts["model_column"],
                    output_column=opts["output_column"],
                    annotator_column=opts["annotator_column"],
                    label_column=opts["label_column"],
                    note_column=opts["note_column"],
                    sample_column=opts["sample_column"],
                    group_column=group_column,
                    axis=axis or group_column,
                    member_column=opts["member_column"],
                    template_column=opts["template_column"],
                    attribute_columns=tuple(opts["attribute_column"]),
                ),
                labels_per_output=opts["labels_per_output"],
                final_rule=opts["final_rule"],
                source=opts["file"].name,
            )
        except OSError as exc:
            raise CommandError(f"Cannot read {opts['file']}: {exc.strerror}") from None
        except AuditError as exc:
            lines = [exc.message] + [
                f"  row {e.get('row')}, column {e.get('field')!r}: {e['message']}" for e in exc.errors
            ]
            raise CommandError("\n".join(lines)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Campaign {result.campaign_id} {opts['campaign']!r}: {result.outputs} outputs, "
                f"{result.labels} labels by {result.annotators} annotators; {result.items_complete} complete,"
                f" {result.items_disputed} disputed (scheme {result.scheme_key})."
            )
        )
