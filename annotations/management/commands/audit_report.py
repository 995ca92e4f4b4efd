"""`python manage.py audit_report --campaign ID --format json|md|html|latex`: the dashboards' numbers.

html is one self-contained page (inline CSS and SVG charts, no network, prints well); latex is booktabs
tables for a paper (annotations/analysis/report_exports.py).
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.analysis.machine_assisted_data import stats_scorer_parse
from annotations.analysis.report import dashboard_report
from annotations.analysis.report_exports import report_to_html, report_to_latex
from annotations.analysis.report_formats import report_to_markdown
from annotations.analysis.selectors import (
    FILTER_FIELDS,
    LABEL_SOURCES,
    MAX_RESAMPLES,
    stats_filters_parse,
    stats_resamples_parse,
)
from annotations.core.exceptions import AuditError


class Command(BaseCommand):
    """Print (or write) the disparity, agreement, scorer and machine-assisted report of a campaign."""

    help = (
        "Disparity, agreement, scorer and machine-assisted statistics of a campaign as JSON, Markdown, "
        "self-contained HTML or LaTeX (booktabs) tables."
    )

    def add_arguments(self, parser) -> None:
        """--campaign, the dashboard filters, --source, --bootstrap, --seed, --scorer, --format, --output."""
        parser.add_argument("--campaign", required=True, help="Campaign id.")
        for name in FILTER_FIELDS:
            if name != "campaign":
                parser.add_argument(f"--{name}", help=f"Only this {name} (id).")
        parser.add_argument("--source", choices=sorted(LABEL_SOURCES), default="final", help="Label source.")
        parser.add_argument("--attribute", help="Only names with this attribute level, KEY:LEVEL.")
        parser.add_argument(
            "--bootstrap", default="1000", help=f"Resamples for the agreement intervals, 0-{MAX_RESAMPLES}."
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="Seed of the bootstrap and Monte Carlo tests."
        )
        parser.add_argument(
            "--scorer",
            help="Scorer id for the machine-assisted estimates (default: see docs/researchers.md).",
        )
        parser.add_argument("--format", choices=("json", "md", "html", "latex"), default="json")
        parser.add_argument("--output", help="Write to this file instead of standard output.")

    def handle(self, *args, **options) -> None:
        """Build the report and print it in the chosen format."""
        data = {name: options.get(name) or "" for name in FILTER_FIELDS}
        data["source"] = options["source"]
        data["attribute"] = options.get("attribute") or ""
        try:
            filters = stats_filters_parse(data=data)
            resamples = stats_resamples_parse(raw=options["bootstrap"])
            scorer = stats_scorer_parse(raw=options.get("scorer"))
            report = dashboard_report(
                filters=filters, n_resamples=resamples, seed=options["seed"], scorer=scorer
            )
        except AuditError as error:
            raise CommandError(error.message) from error
        if options["format"] == "json":
            text = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        elif options["format"] == "html":
            text = report_to_html(report)
        elif options["format"] == "latex":
            text = report_to_latex(report)
        else:
            text = report_to_markdown(report)
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {options['output']}")
        else:
            self.stdout.write(text, ending="")
