"""Reads for exports: labels, and outputs with their final label, as rows streamed from a server-side cursor.

On PostgreSQL `.iterator(chunk_size=...)` reads through a named cursor, so memory stays flat however many
rows there are.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import CharField, Exists, OuterRef, Subquery
from django.db.models.functions import Cast

from annotations.models import CampaignItem, Label
from inference.models import Score, Scorer

CHUNK_ROWS = 5000


@dataclass(frozen=True)
class ExportRows:
    """Column names and an iterator of tuples in that order."""

    columns: tuple[str, ...]
    rows: Iterator[tuple]
    # Arrow type names of columns whose type their first values may not show (all blank, or a name
    # that reads like an id), e.g. {"score_toxicity": "float64"}.
    column_types: dict[str, str] = field(default_factory=dict)


_OUTPUT_FIELDS = (
    ("campaign_id", "campaign_id"),
    ("campaign", "campaign__name"),
    ("item_id", "id"),
    ("output_id", "output_id"),
    ("run_id", "output__run_id"),
    ("run", "output__run__name"),
    ("prompt_id", "output__prompt_id"),
    ("prompt_key", "output__prompt__key"),
    ("prompt", "output__prompt__text"),
    ("template", "output__prompt__template__key"),
    ("axis", "output__prompt__group__axis__key"),
    ("group", "output__prompt__group__key"),
    ("group_name", "output__prompt__group__name"),
    ("member", "output__prompt__member__value"),
    ("model", "output__endpoint__name"),
    ("sample", "output__sample_index"),
    ("output", "output__text"),
)

LABEL_FIELDS = (
    ("label_id", "id"),
    *((name, f"item__{path}" if path != "id" else "item_id") for name, path in _OUTPUT_FIELDS),
    ("annotator", "annotator__username"),
    ("label_key", "category__key"),
    ("label_name", "category__name"),
    ("note", "note"),
    ("active_seconds", "active_seconds"),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
)

_TIMESTAMPS = {"created_at", "updated_at"}

OUTPUT_FIELDS = (
    *_OUTPUT_FIELDS,
    ("status", "status"),
    ("label_count", "label_count"),
    ("final_label_key", "final_category__key"),
    ("final_label_name", "final_category__name"),
    ("final_source", "final_source"),
)


def _selected(path: str, *, text_timestamps: bool):
    """The field, or (for text formats) its timestamp already as text: the driver then builds no datetimes."""
    if text_timestamps and path in _TIMESTAMPS:
        return Cast(path, output_field=CharField())
    return path


def label_export_rows(*, campaign_id: int | None = None, text_timestamps: bool = False) -> ExportRows:
    """One row per label (optionally of one campaign), in label order."""
    queryset = Label.objects.all()
    if campaign_id is not None:
        queryset = queryset.filter(item__campaign_id=campaign_id)
    rows = (
        queryset.order_by("id")
        .values_list(*(_selected(path, text_timestamps=text_timestamps) for _, path in LABEL_FIELDS))
        .iterator(chunk_size=CHUNK_ROWS)
    )
    return ExportRows(columns=tuple(name for name, _ in LABEL_FIELDS), rows=rows)


def _score_columns(campaign_id: int | None) -> list[tuple[str, Scorer]]:
    """(`score_<name>`, scorer) for each scorer with a done score on the exported outputs (one query)."""
    scores = Score.objects.filter(scorer_id=OuterRef("pk"), status=Score.Status.DONE)
    if campaign_id is not None:
        scores = scores.filter(output__campaign_items__campaign_id=campaign_id)
    else:
        scores = scores.filter(output__campaign_items__isnull=False)
    scorers = Scorer.objects.filter(Exists(scores)).order_by("name")
    return [(f"score_{scorer.name}", scorer) for scorer in scorers]


def _score_value(scorer: Scorer) -> Subquery:
    """The scorer's judgement of the row's output: the category key, or the flag score of a scorer
    without a scheme; from its newest done score (the latest version run), blank when it has none.

    A correlated subquery, so the export stays one streamed query; it finds the output's few scores
    through the index on Score.output.
    """
    newest = Score.objects.filter(
        output_id=OuterRef("output_id"), scorer_id=scorer.pk, status=Score.Status.DONE
    ).order_by("-pk")
    return Subquery(newest.values("category__key" if scorer.scheme_id else "flag_score")[:1])


def output_export_rows(*, campaign_id: int | None = None, text_timestamps: bool = False) -> ExportRows:
    """One row per campaign item (an output in a campaign) with its final label, if any, then one
    `score_<scorer>` column per scorer that scored the exported outputs."""
    queryset = CampaignItem.objects.all()
    if campaign_id is not None:
        queryset = queryset.filter(campaign_id=campaign_id)
    scores = _score_columns(campaign_id)
    # Aliased by scorer id: a scorer's name may hold characters a query alias may not.
    queryset = queryset.annotate(**{f"score_{scorer.pk}_": _score_value(scorer) for _, scorer in scores})
    rows = (
        queryset.order_by("id")
        .values_list(*(path for _, path in OUTPUT_FIELDS), *(f"score_{scorer.pk}_" for _, scorer in scores))
        .iterator(chunk_size=CHUNK_ROWS)
    )
    return ExportRows(
        columns=tuple(name for name, _ in OUTPUT_FIELDS) + tuple(name for name, _ in scores),
        rows=rows,
        column_types={name: "string" if scorer.scheme_id else "float64" for name, scorer in scores},
    )
