"""Importing outputs generated elsewhere (CSV or JSONL), all or nothing, with row-numbered errors."""

import csv
import io
import json
from dataclasses import dataclass
from pathlib import PurePath

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError
from annotations.library.promptsets import promptset_freeze
from annotations.models import PromptSet
from inference.models import GenerationRun, ModelEndpoint, Output
from inference.services.generation import clean_text

MAX_TEXT_CHARS = 100_000
MAX_SAMPLE_INDEX = 32_768
MAX_LISTED_ERRORS = 200
FORMATS = ("csv", "jsonl")


@dataclass(frozen=True)
class _Row:
    number: int
    prompt_key: str | None
    prompt_text: str | None
    output: object
    sample_index: object
    finish_reason: object


def _rows_csv(text: str) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = set(reader.fieldnames or [])
    missing = []
    if "output" not in header:
        missing.append({"row": 1, "field": "output", "message": "The header has no `output` column."})
    if not header & {"prompt_key", "prompt"}:
        missing.append(
            {
                "row": 1,
                "field": "prompt_key",
                "message": "The header needs a `prompt_key` or a `prompt` column.",
            }
        )
    if missing:
        raise AuditError("The CSV header is incomplete.", errors=missing)
    rows = []
    start = reader.line_num  # the line a record starts on is the one after the previous record's end
    for record in reader:
        rows.append(
            _Row(
                number=start + 1,
                prompt_key=record.get("prompt_key") or None,
                prompt_text=record.get("prompt") or None,
                output=record.get("output"),
                sample_index=record.get("sample_index") or None,
                finish_reason=record.get("finish_reason") or "",
            )
        )
        start = reader.line_num
    return rows


def _rows_jsonl(text: str) -> tuple[list[_Row], list[dict]]:
    rows, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            errors.append({"row": number, "field": "", "message": f"Not valid JSON: {exc}."})
            continue
        if not isinstance(record, dict):
            errors.append({"row": number, "field": "", "message": "Each line must be a JSON object."})
            continue
        rows.append(
            _Row(
                number=number,
                prompt_key=record.get("prompt_key"),
                prompt_text=record.get("prompt"),
                output=record.get("output"),
                sample_index=record.get("sample_index"),
                finish_reason=record.get("finish_reason", ""),
            )
        )
    return rows, errors


def _parse(content: bytes, fmt: str) -> tuple[list[_Row], list[dict]]:
    # An upload's size in bytes was checked where it was received (annotations.core.uploads).
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AuditError(f"The file is not UTF-8 text (byte {exc.start} is invalid).") from None
    if fmt == "csv":
        try:
            rows, errors = _rows_csv(text), []
        except csv.Error as exc:
            raise AuditError(f"The CSV cannot be read: {exc}.") from None
    else:
        rows, errors = _rows_jsonl(text)
    if len(rows) > settings.AUDIT_UPLOAD_MAX_ROWS:
        raise AuditError(
            f"The file has {len(rows)} rows; at most {settings.AUDIT_UPLOAD_MAX_ROWS} are accepted."
        )
    if not rows and not errors:
        raise AuditError("The file has no rows.")
    return rows, errors


def import_format(filename: str, fmt: str | None = None) -> str:
    """The upload's format: `fmt` if given, else from the file name's extension (.csv, .jsonl)."""
    chosen = (fmt or PurePath(filename).suffix.lstrip(".")).lower()
    if chosen == "ndjson":
        chosen = "jsonl"
    if chosen not in FORMATS:
        raise AuditError(f"Unknown format {chosen or filename!r}: upload a .csv or .jsonl file.")
    return chosen


def _row_prompt(
    row: _Row, *, by_key: dict[str, int], by_text: dict[str, int | None], prompt_set: PromptSet
) -> tuple[int | None, list[tuple[str, str]]]:
    """The row's prompt id, matched by key or else by exact text, or the problem."""
    if row.prompt_key is not None:
        prompt_id = by_key.get(str(row.prompt_key))
        if prompt_id is None:
            return None, [
                ("prompt_key", f"No prompt with key {str(row.prompt_key)[:200]!r} in {prompt_set}.")
            ]
        return prompt_id, []
    if row.prompt_text is None:
        return None, [("prompt_key", "Give prompt_key or prompt.")]
    text = str(row.prompt_text)
    if text not in by_text:
        return None, [("prompt", f"No prompt with exactly this text in {prompt_set}: {text[:200]!r}.")]
    if by_text[text] is None:
        return None, [("prompt", "Several prompts of the set have exactly this text: use prompt_key.")]
    return by_text[text], []


def _row_sample(row: _Row) -> tuple[int | None, list[tuple[str, str]]]:
    """The row's sample index (None: number it in file order), or the problem."""
    if row.sample_index is None:
        return None, []
    try:
        if isinstance(row.sample_index, bool | float):
            raise ValueError
        sample = int(row.sample_index)
        if not 0 <= sample < MAX_SAMPLE_INDEX:
            raise ValueError
    except (TypeError, ValueError):
        return None, [
            ("sample_index", f"sample_index must be a whole number from 0 (got {row.sample_index!r}).")
        ]
    return sample, []


def _row_value_problems(row: _Row) -> list[tuple[str, str]]:
    """Problems with the row's output text and finish reason."""
    problems = []
    if not isinstance(row.output, str):
        problems.append(("output", "The output is missing or not text."))
    elif len(row.output) > MAX_TEXT_CHARS:
        problems.append(("output", f"The output is longer than {MAX_TEXT_CHARS} characters."))
    if not isinstance(row.finish_reason, str) or len(row.finish_reason) > 32:
        problems.append(("finish_reason", "finish_reason must be text of at most 32 characters."))
    return problems


def outputs_import(
    *,
    prompt_set: PromptSet,
    model_name: str,
    content: bytes,
    filename: str,
    actor,
    fmt: str | None = None,
    run_name: str = "",
) -> GenerationRun:
    """Import outputs of `model_name` for `prompt_set` as a new run (kind IMPORTED), all or nothing.

    Each row names its prompt by `prompt_key` or by its exact text (`prompt`), and gives `output`
    (the answer), optionally `sample_index` (else numbered per prompt in file order) and
    `finish_reason`. Every problem is reported with its row (line) number and field; nothing is
    saved unless every row is valid.
    """
    model_name = model_name.strip()
    if not model_name:
        raise AuditError(
            "Give the model name the outputs come from.",
            errors=[{"row": None, "field": "model", "message": "Empty."}],
        )
    rows, errors = _parse(content, import_format(filename, fmt))
    by_key = dict(prompt_set.prompts.values_list("key", "pk"))
    by_text: dict[str, int | None] = {}
    for text, pk in prompt_set.prompts.values_list("text", "pk"):
        by_text[text] = None if text in by_text else pk  # None: two prompts share this text
    outputs: list[Output] = []
    seen: dict[tuple[int, int], int] = {}
    next_sample: dict[int, int] = {}
    for row in rows:
        prompt_id, problems = _row_prompt(row, by_key=by_key, by_text=by_text, prompt_set=prompt_set)
        sample, sample_problems = _row_sample(row)
        problems += sample_problems + _row_value_problems(row)
        if not problems:
            if sample is None:
                sample = next_sample.get(prompt_id, 0)
            next_sample[prompt_id] = max(next_sample.get(prompt_id, 0), sample + 1)
            if (prompt_id, sample) in seen:
                problems.append(("sample_index", f"Same prompt and sample as row {seen[prompt_id, sample]}."))
        errors += [{"row": row.number, "field": field, "message": message} for field, message in problems]
        if problems:
            continue
        seen[prompt_id, sample] = row.number
        outputs.append(
            Output(
                prompt_id=prompt_id,
                sample_index=sample,
                status=Output.Status.DONE,
                text=clean_text(row.output),
                finish_reason=clean_text(str(row.finish_reason or "")),
                request={"imported_from": filename[:300], "row": row.number},
            )
        )
    if errors:
        errors.sort(key=lambda e: e["row"] or 0)
        shown = errors[:MAX_LISTED_ERRORS]
        more = f" (the first {MAX_LISTED_ERRORS} are listed)" if len(errors) > MAX_LISTED_ERRORS else ""
        plural = "s" if len(errors) != 1 else ""
        raise AuditError(f"Nothing was imported: {len(errors)} problem{plural}{more}.", errors=shown)
    with transaction.atomic():
        now = timezone.now()
        endpoint, _ = ModelEndpoint.objects.get_or_create(
            name=model_name[:200],
            defaults={"served_model_name": model_name[:300], "base_urls": [], "is_active": False},
        )
        promptset_freeze(prompt_set=prompt_set)
        run = GenerationRun.objects.create(
            name=run_name.strip() or f"{model_name} on {prompt_set} (imported {filename})"[:200],
            prompt_set=prompt_set,
            samples_per_prompt=max(s for _, s in seen) + 1,
            kind=GenerationRun.Kind.IMPORTED,
            status=GenerationRun.Status.COMPLETED,
            created_by=actor if actor is not None and actor.is_authenticated else None,
            started_at=now,
            finished_at=now,
        )
        run.endpoints.set([endpoint])
        snapshot = {
            "endpoint_id": endpoint.pk,
            "name": endpoint.name,
            "imported": True,
            "source": filename[:300],
        }
        for output in outputs:
            output.run = run
            output.endpoint = endpoint
            output.endpoint_snapshot = snapshot
            output.finished_at = now
        Output.objects.bulk_create(outputs, batch_size=2000)
        audit_event_record(
            actor=actor,
            action="outputs.import",
            target=run,
            details={"file": filename[:300], "rows": len(outputs), "model": model_name},
        )
    return run
