"""Importing judgements made elsewhere as the scores of an imported scorer, all or nothing.

A row names its output by `output_id`, or by `prompt` (the prompt's key or exact text; `prompt_key`
takes a key only) + `model` (the endpoint's name) + `sample` (the sample index) + `run` (the
generation run id), where `sample` and `run` are needed only when more than one output would match.
It carries `category` (a key of the scorer's scheme), and/or `probability` (a flag score 0..1, with
an optional `flagged` true/false), and/or per-category probabilities (`probabilities`, a JSON object
key -> p, or one `p_<key>` column per key), and optionally `raw` (kept with the score).

Every row is checked before anything is written and every problem is reported with its row (the
line in the file; a CSV's header is line 1) and its column; then one completed score run with
neither target holds all the scores, in one transaction.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError
from annotations.core.uploads import upload_rows_read
from inference.models import ModelEndpoint, Output, Score, Scorer, ScoreRun
from inference.services.imports import MAX_LISTED_ERRORS, import_format
from inference.services.score_import_rows import (
    ImportRow,
    Problems,
    header_check,
    row_read_identity,
    row_read_values,
)

LOOKUP_BATCH = 500  # values per IN (...) list: well within SQLite's limit on query parameters
_CANDIDATE_FIELDS = ("pk", "endpoint_id", "sample_index", "run_id", "status", "prompt__key", "prompt__text")


def _batches(values: Iterable, size: int = LOOKUP_BATCH) -> Iterator[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _resolve_by_id(rows: list[ImportRow], problems: Problems) -> None:
    """Check that the outputs named by id exist and are done."""
    wanted = {row.output_id for row in rows}
    status: dict[int, str] = {}
    for batch in _batches(wanted):
        status.update(Output.objects.filter(pk__in=batch).values_list("pk", "status"))
    for row in rows:
        if row.output_id not in status:
            problems.add(row.number, "output_id", f"No output {row.output_id}.")
            row.output_id = None
        elif status[row.output_id] != Output.Status.DONE:
            problems.add(
                row.number, "output_id", f"Output {row.output_id} is {status[row.output_id]}, not done."
            )
            row.output_id = None


@dataclass(frozen=True)
class _Candidate:
    """An output a row's prompt and model could mean."""

    pk: int
    sample: int
    run: int
    status: str


def _candidates_find(rows: list[ImportRow], endpoints: dict[str, int]) -> tuple[dict, dict]:
    """The outputs of the rows' models by (prompt key, endpoint) and by (prompt text, endpoint)."""
    by_key: dict[tuple, list[_Candidate]] = defaultdict(list)
    by_text: dict[tuple, list[_Candidate]] = defaultdict(list)
    for batch in _batches({row.prompt for row in rows}):
        values = set(batch)
        found = (
            Output.objects.filter(endpoint_id__in=endpoints.values())
            .filter(Q(prompt__key__in=batch) | Q(prompt__text__in=batch))
            .values_list(*_CANDIDATE_FIELDS)
        )
        for pk, endpoint_id, sample, run, status, key, text in found.iterator(chunk_size=2000):
            candidate = _Candidate(pk, sample, run, status)
            # An output can come back in two batches (its key in one, its text in another): each index
            # takes it only from the batch holding that value.
            if key in values:
                by_key[key, endpoint_id].append(candidate)
            if text in values:
                by_text[text, endpoint_id].append(candidate)
    return by_key, by_text


def _resolve_by_prompt(rows: list[ImportRow], problems: Problems) -> None:
    """Find each row's output from its prompt (key, else exact text), model, sample and run."""
    endpoints = dict(
        ModelEndpoint.objects.filter(name__in={row.model for row in rows}).values_list("name", "pk")
    )
    for row in rows:
        if row.model not in endpoints:
            problems.add(row.number, "model", f"No model named {row.model[:200]!r}.")
    rows = [row for row in rows if row.model in endpoints]
    by_key, by_text = _candidates_find(rows, endpoints)
    for row in rows:
        place = (row.prompt, endpoints[row.model])
        candidates = by_key.get(place, []) or ([] if row.prompt_is_key else by_text.get(place, []))
        if row.sample is not None:
            candidates = [c for c in candidates if c.sample == row.sample]
        if row.run is not None:
            candidates = [c for c in candidates if c.run == row.run]
        column = "prompt_key" if row.prompt_is_key else "prompt"
        if not candidates:
            which = "".join(
                [
                    f", sample {row.sample}" if row.sample is not None else "",
                    f", in run {row.run}" if row.run is not None else "",
                ]
            )
            problems.add(
                row.number,
                column,
                f"No output of model {row.model!r}{which} for prompt {row.prompt[:200]!r}.",
            )
        elif len(candidates) > 1:
            runs = sorted({c.run for c in candidates})
            samples = sorted({c.sample for c in candidates})
            if len(runs) > 1:
                problems.add(row.number, "run", f"Outputs of runs {_listed(runs)} match: give run.")
            elif len(samples) > 1:
                problems.add(row.number, "sample", f"Samples {_listed(samples)} match: give sample.")
            else:
                problems.add(row.number, column, "Several prompts have exactly this text: give prompt_key.")
        elif candidates[0].status != Output.Status.DONE:
            problems.add(
                row.number, column, f"Output {candidates[0].pk} is {candidates[0].status}, not done."
            )
        else:
            row.output_id = candidates[0].pk


def _listed(values: list) -> str:
    shown = ", ".join(str(v) for v in values[:10])
    return shown + (f" and {len(values) - 10} more" if len(values) > 10 else "")


def _duplicates_and_scored(rows: list[ImportRow], scorer: Scorer, problems: Problems) -> None:
    """An output may appear once in the file, and only if this scorer version has not scored it."""
    first: dict[int, ImportRow] = {}
    for row in rows:
        if row.output_id in first:
            problems.add(
                row.number,
                row.identity_column,
                f"Output {row.output_id} is also in row {first[row.output_id].number}.",
            )
        else:
            first[row.output_id] = row
    scored: dict[int, int] = {}
    for batch in _batches(first):
        scored.update(
            Score.objects.filter(
                scorer=scorer, scorer_version=scorer.version, output_id__in=batch
            ).values_list("output_id", "run_id")
        )
    for output_id, run_id in scored.items():
        row = first[output_id]
        problems.add(
            row.number,
            row.identity_column,
            f"Output {output_id} already has a score of {scorer.name} (score run {run_id}); scores are not "
            "replaced: leave the row out, or import it as another scorer.",
        )


def _rows_validate(records: list[tuple[int, dict]], scorer: Scorer) -> list[ImportRow]:
    """Every row read and its output found; AuditError listing every problem with its row and column."""
    keys = dict(scorer.scheme.categories.order_by("order").values_list("key", "pk")) if scorer.scheme else {}
    problems = Problems()
    rows = []
    for number, record in records:
        row = ImportRow(number=number)
        row_read_identity(row, record, problems)
        row_read_values(row, record, scorer=scorer, keys=keys, problems=problems)
        rows.append(row)
    _resolve_by_id([r for r in rows if r.is_identified and r.by_id], problems)
    _resolve_by_prompt([r for r in rows if r.is_identified and not r.by_id], problems)
    _duplicates_and_scored([r for r in rows if r.output_id is not None], scorer, problems)
    if problems.items:
        errors = sorted(problems.items, key=lambda e: e["row"])
        more = f" (the first {MAX_LISTED_ERRORS} are listed)" if len(errors) > MAX_LISTED_ERRORS else ""
        plural = "s" if len(errors) != 1 else ""
        raise AuditError(
            f"Nothing was imported: {len(errors)} problem{plural}{more}.", errors=errors[:MAX_LISTED_ERRORS]
        )
    return rows


def scores_import(
    *, scorer: Scorer, content: bytes, filename: str, fmt: str | None = None, actor
) -> ScoreRun:
    """Import the scores of an imported scorer from CSV or JSONL as one completed score run, all or nothing.

    The columns are described in this module's docstring; the upload's size in bytes was checked where
    it was received (annotations.core.uploads).
    """
    if scorer.kind != Scorer.Kind.IMPORTED:
        raise AuditError(
            f"{scorer.name!r} is a {scorer.get_kind_display().lower()} scorer; only an imported scorer "
            "takes scores from a file (scorer_add NAME --kind imported).",
            errors=[{"row": None, "field": "scorer", "message": "Choose a scorer of kind imported."}],
        )
    if not scorer.is_active:
        raise AuditError(
            f"The scorer {scorer.name!r} is not active.",
            errors=[{"row": None, "field": "scorer", "message": "Not active."}],
        )
    chosen = import_format(filename, fmt)
    # upload_rows_read picks its reader by the name's extension: name the chosen format.
    records = upload_rows_read(data=content, filename=f"scores.{chosen}")
    header_check(records, chosen)
    with transaction.atomic():
        # Locking the scorer serialises two imports (and a change of its version) with this one, so
        # the check for outputs it has already scored stays true until the scores are written.
        scorer = Scorer.objects.select_for_update().get(pk=scorer.pk)
        rows = _rows_validate(records, scorer)
        now = timezone.now()
        run = ScoreRun.objects.create(
            name=f"import {filename}"[:200],
            scorer=scorer,
            scorer_version=scorer.version,
            scorer_config=scorer.config,
            status=ScoreRun.Status.COMPLETED,
            created_by=actor if actor is not None and actor.is_authenticated else None,
            started_at=now,
            finished_at=now,
        )
        source = filename[:300]
        Score.objects.bulk_create(
            (
                Score(
                    run=run,
                    scorer=scorer,
                    scorer_version=scorer.version,
                    output_id=row.output_id,
                    status=Score.Status.DONE,
                    category_id=row.category_id,
                    probabilities=row.probabilities,
                    flag_score=row.flag_score,
                    is_flagged=row.is_flagged,
                    raw={"imported_from": source, "row": row.number}
                    | ({"raw": row.raw} if row.raw is not None else {}),
                    finished_at=now,
                )
                for row in rows
            ),
            batch_size=2000,
        )
        audit_event_record(
            actor=actor,
            action="score_run.import",
            target=run,
            details={"file": source, "scores": len(rows), "scorer": scorer.name, "version": scorer.version},
        )
    return run
