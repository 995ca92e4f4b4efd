"""Reading one row of a score import: which output it names and the values it carries.

Pure checks of the row's own columns, each problem reported with its row and column; finding the
outputs the rows name is score_imports.py's part.
"""

import json
import math
from dataclasses import dataclass, field

from annotations.core.exceptions import AuditError
from inference.models import Scorer
from inference.scorers.probabilities import PROBABILITY_SUM_TOLERANCE

PROBABILITY_COLUMN_PREFIX = "p_"
MAX_RAW_CHARS = 20_000
MAX_KEY_CHARS = 64
_VALUE_COLUMNS = ("category", "probability", "probabilities")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass
class ImportRow:
    """One row's values once read; `output_id` is filled in when its output is resolved."""

    number: int
    by_id: bool = False
    is_identified: bool = True  # False: the identifying columns have problems already reported
    output_id: int | None = None
    prompt: str = ""
    prompt_is_key: bool = False
    model: str = ""
    sample: int | None = None
    run: int | None = None
    category_id: int | None = None
    probabilities: dict = field(default_factory=dict)
    flag_score: float | None = None
    is_flagged: bool | None = None
    raw: object = None

    @property
    def identity_column(self) -> str:
        """The column that names the row's output."""
        return "output_id" if self.by_id else "prompt_key" if self.prompt_is_key else "prompt"


class Problems:
    """The problems found so far, each with its row and column."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, row: int, column: str, message: str) -> None:
        self.items.append({"row": row, "field": column, "message": message})


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _whole(value: object) -> int | None:
    """A whole number >= 0 from an int or its digits; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _probability(value: object) -> float | None:
    """A number from 0 to 1 from a number or its text; None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else None


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def header_check(records: list[tuple[int, dict]], fmt: str) -> None:
    """A CSV header that cannot identify outputs or carries no judgement is one error, not one a row."""
    if fmt != "csv":
        return
    header = set(records[0][1])
    errors = []
    if "output_id" not in header and not ({"prompt", "prompt_key"} & header and "model" in header):
        errors.append(
            {
                "row": 1,
                "field": "output_id",
                "message": "Give an output_id column, or prompt and model columns.",
            }
        )
    if not (set(_VALUE_COLUMNS) & header or any(c.startswith(PROBABILITY_COLUMN_PREFIX) for c in header)):
        errors.append(
            {
                "row": 1,
                "field": "category",
                "message": "Give a category, probability, probabilities or p_<key> column.",
            }
        )
    if errors:
        raise AuditError("The CSV header is incomplete; nothing was imported.", errors=errors)


def row_read_identity(row: ImportRow, record: dict, problems: Problems) -> None:
    """The row's output id, or what finds its output (prompt, model, sample, run)."""
    before = len(problems.items)
    if not _blank(record.get("output_id")):
        row.by_id = True
        row.output_id = _whole(record["output_id"])
        if row.output_id is None:
            problems.add(row.number, "output_id", f"{str(record['output_id'])[:80]!r} is not an output id.")
    else:
        row.prompt_is_key = not _blank(record.get("prompt_key"))
        value = record.get("prompt_key") if row.prompt_is_key else record.get("prompt")
        if _blank(value) or _blank(record.get("model")):
            problems.add(row.number, "output_id", "Give output_id, or prompt and model.")
        else:
            row.prompt, row.model = str(value), str(record["model"]).strip()
        for name in ("sample", "run"):
            if not _blank(record.get(name)):
                number = _whole(record[name])
                if number is None:
                    problems.add(
                        row.number, name, f"{str(record[name])[:80]!r} is not a whole number from 0."
                    )
                setattr(row, name, number)
    row.is_identified = len(problems.items) == before


def _given_probabilities(row: ImportRow, record: dict, problems: Problems) -> tuple[dict, str | None] | None:
    """The probabilities as given ({key: value}) and the column naming them all (None: one p_<key> each)."""
    given = record.get("probabilities")
    columns = {
        name[len(PROBABILITY_COLUMN_PREFIX) :]: value
        for name, value in record.items()
        if name.startswith(PROBABILITY_COLUMN_PREFIX) and not _blank(value)
    }
    if _blank(given):
        return (columns, None) if columns else None
    if columns:
        problems.add(row.number, "probabilities", "Give probabilities or p_<key> columns, not both.")
        return None
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except ValueError:
            given = None
    if not isinstance(given, dict) or not given:
        problems.add(row.number, "probabilities", "Give a JSON object of category key -> probability.")
        return None
    return given, "probabilities"


def _read_probabilities(row: ImportRow, record: dict, keys: dict[str, int], problems: Problems) -> None:
    """Per-category probabilities from `probabilities` or the p_<key> columns: known keys, 0..1, sum ~1."""
    found = _given_probabilities(row, record, problems)
    if found is None:
        return
    given, column = found
    before = len(problems.items)
    probabilities = {}
    for name, value in given.items():
        key = str(name)
        where = column or PROBABILITY_COLUMN_PREFIX + key
        if keys and key not in keys:
            problems.add(
                row.number, where, f"Unknown category {key[:80]!r}; the scheme has {', '.join(keys)}."
            )
        elif not 1 <= len(key) <= MAX_KEY_CHARS:
            problems.add(row.number, where, f"A key has 1 to {MAX_KEY_CHARS} characters.")
        elif (number := _probability(value)) is None:
            problems.add(row.number, where, f"{str(value)[:80]!r} for {key!r} is not from 0 to 1.")
        else:
            probabilities[key] = number
    if len(problems.items) > before:
        return
    total = sum(probabilities.values())
    if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
        problems.add(
            row.number,
            column or PROBABILITY_COLUMN_PREFIX + "*",
            f"The probabilities sum to {total:.4g}, not 1.",
        )
    row.probabilities = probabilities


def row_read_values(
    row: ImportRow, record: dict, *, scorer: Scorer, keys: dict[str, int], problems: Problems
) -> None:
    """The row's category, flag score, flag, probabilities and raw answer."""
    category = record.get("category")
    if not _blank(category):
        category = str(category).strip()
        if not keys:
            problems.add(
                row.number,
                "category",
                f"The scorer {scorer.name!r} has no label scheme: give probability, not category.",
            )
        elif category not in keys:
            problems.add(
                row.number,
                "category",
                f"Unknown category {category[:80]!r}; the scheme has {', '.join(keys)}.",
            )
        else:
            row.category_id = keys[category]
    if not _blank(record.get("probability")):
        row.flag_score = _probability(record["probability"])
        if row.flag_score is None:
            problems.add(
                row.number, "probability", f"{str(record['probability'])[:80]!r} is not from 0 to 1."
            )
    if not _blank(record.get("flagged")):
        row.is_flagged = _flag(record["flagged"])
        if row.is_flagged is None:
            problems.add(row.number, "flagged", "Write true or false.")
    _read_probabilities(row, record, keys, problems)
    given = any(not _blank(record.get(name)) for name in _VALUE_COLUMNS)
    if not given and not any(
        n.startswith(PROBABILITY_COLUMN_PREFIX) and not _blank(v) for n, v in record.items()
    ):
        problems.add(row.number, "category", "Give category, probability or probabilities.")
    if not _blank(record.get("raw")):
        row.raw = record["raw"]
        if len(json.dumps(row.raw, ensure_ascii=False)) > MAX_RAW_CHARS:
            problems.add(row.number, "raw", f"Longer than {MAX_RAW_CHARS} characters.")
