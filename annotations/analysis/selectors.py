"""Reads that feed `annotations.stats`: dashboard filters and the arrays the statistics take.

No label row and no output is read. Items carry their output's model, prompt and run and a summary
of their labels (CampaignItem), and items that agree on all of it are counted together:

- item rows: (run, model, prompt, final label, adjudicated?, gold label, label pattern) -> items;
- label sets: (model, group, gold label, "annotator:category" signature) -> items, filtered.

On PostgreSQL both come from tallies that triggers keep as items change (CampaignItemTally,
LabelSetTally; annotations/analysis/tallies.py): a million items are a few hundred thousand small rows read
in two queries at once. Elsewhere (SQLite), or with a template filter for the label sets, the same
rows come from a GROUP BY over the items. numpy then builds every array the statistics take from
these weighted rows (bincounts with weights), and the small dimension tables (models, prompts,
annotators) are plain queries.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from annotations.core.exceptions import AuditError, NotFoundError
from annotations.core.ids import MAX_ID
from annotations.labelling.label_summary import pattern_category_ids, signatures_parse
from annotations.models import (
    Campaign,
    CampaignItem,
    CampaignItemTally,
    Group,
    GroupMember,
    LabelSetTally,
    Prompt,
)
from annotations.stats import NO_LABEL
from inference.models import GenerationRun, ModelEndpoint

LabelSource = Literal["final", "all"]
LABEL_SOURCES: dict[str, str] = {
    "final": "Final labels (adjudicated, else unanimous, else the campaign's rule)",
    "all": "All individual labels",
}
FILTER_FIELDS = ("campaign", "run", "model", "axis", "group", "template")


@dataclass(frozen=True)
class StatsFilters:
    """What the dashboard looks at: a campaign narrowed by run, model, axis, group and template."""

    campaign: int
    run: int | None = None
    model: int | None = None
    axis: int | None = None
    group: int | None = None
    template: int | None = None
    source: LabelSource = "final"
    # A member attribute as (key, level), e.g. ("popularity", "common"): only names with that level.
    attribute: tuple[str, str] | None = None

    def as_query(self) -> dict[str, str]:
        """The filters as query-string parameters (unset ones left out), for shareable URLs."""
        query = {name: str(getattr(self, name)) for name in FILTER_FIELDS if getattr(self, name) is not None}
        if self.attribute is not None:
            query["attribute"] = ":".join(self.attribute)
        query["source"] = self.source
        return query


ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_.\- ]{1,64}")
MAX_ATTRIBUTE_LEVEL = 80


def attribute_filter_parse(raw: str | None) -> tuple[str, str] | None:
    """`attribute=KEY:LEVEL` (a member attribute and one of its levels), or None when empty."""
    raw = (raw or "").strip()
    if not raw:
        return None
    key, sep, level = raw.partition(":")
    key, level = key.strip(), level.strip()
    if not sep or not ATTRIBUTE_KEY.fullmatch(key) or not level or len(level) > MAX_ATTRIBUTE_LEVEL:
        message = (
            "attribute must be KEY:LEVEL, a name attribute and one of its levels (e.g. "
            "popularity:common; key: letters, digits, _ . - and spaces, up to 64; level up to "
            f"{MAX_ATTRIBUTE_LEVEL} characters), got {raw[:100]!r}"
        )
        raise AuditError(message, errors=[{"field": "attribute", "message": message}])
    return key, level


def attribute_level(value) -> str | None:
    """A member attribute's value as a level: short scalars as text (booleans yes/no), else None."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (str, int, float)) and len(str(value)) <= MAX_ATTRIBUTE_LEVEL:
        return str(value)
    return None


def attribute_member_ids(attribute: tuple[str, str]) -> list[int]:
    """Ids of the members whose attribute `key` has the level (compared as attribute_level's text)."""
    key, level = attribute
    rows = GroupMember.objects.values_list("pk", "attributes")
    return [pk for pk, attrs in rows if isinstance(attrs, dict) and attribute_level(attrs.get(key)) == level]


def member_filter_sql(filters: StatsFilters, column: str = "p.member_id") -> tuple[str, list]:
    """The attribute filter as an SQL condition on `column` with its parameters ("" when unset)."""
    if filters.attribute is None:
        return "", []
    ids = attribute_member_ids(filters.attribute)
    if not ids:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", ids


def stats_filters_parse(*, data: Mapping[str, str]) -> StatsFilters:
    """Read filters from a query string; raise AuditError naming every bad field."""
    errors: list[dict] = []
    values: dict[str, int | None] = {}
    for name in FILTER_FIELDS:
        raw = (data.get(name) or "").strip()
        if not raw:
            values[name] = None
            continue
        try:
            values[name] = int(raw)
        except ValueError:
            errors.append({"field": name, "message": f"{name} must be a whole-number id, got {raw!r}"})
            continue
        if not 1 <= values[name] <= MAX_ID:
            errors.append({"field": name, "message": f"{name} must be an id in 1..{MAX_ID}, got {raw!r}"})
    if not errors and values["campaign"] is None:
        errors.append({"field": "campaign", "message": "campaign is required"})
    source = (data.get("source") or "final").strip()
    if source not in LABEL_SOURCES:
        errors.append({"field": "source", "message": f"source must be one of {sorted(LABEL_SOURCES)}"})
    attribute = None
    try:
        attribute = attribute_filter_parse(data.get("attribute"))
    except AuditError as error:
        errors += error.errors
    if errors:
        raise AuditError("; ".join(e["message"] for e in errors), errors=errors)
    return StatsFilters(source=source, attribute=attribute, **values)  # type: ignore[arg-type]


DEFAULT_RESAMPLES = 1000
MAX_RESAMPLES = 10_000


def stats_resamples_parse(*, raw: str | None) -> int:
    """The `bootstrap` parameter: resamples behind the agreement intervals (0 = none, default 1000)."""
    if raw is None or not raw.strip():
        return DEFAULT_RESAMPLES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_RESAMPLES:
        message = f"bootstrap must be a whole number from 0 to {MAX_RESAMPLES}, got {raw!r}"
        raise AuditError(message, errors=[{"field": "bootstrap", "message": message}])
    return value


def campaign_get_for_stats(*, campaign_id: int) -> Campaign:
    """The campaign with its scheme and sampling scorer, or NotFoundError."""
    campaign = Campaign.objects.select_related("scheme", "sampling_scorer").filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFoundError(f"Campaign {campaign_id} does not exist.")
    return campaign


@dataclass(frozen=True)
class FilterChoices:
    """What each filter can be set to within one campaign (for the filter form): (id, name) pairs."""

    runs: list[tuple[int, str]]
    models: list[tuple[int, str]]
    axes: list[tuple[int, str]]
    groups: list[tuple[int, str]]
    templates: list[tuple[int, str]]


def _filter_choices(
    run_ids: np.ndarray, model_names: dict[int, str], prompt_rows: dict[int, tuple]
) -> FilterChoices:
    """The campaign's runs, models, axes, groups and templates from rows already read (+1 query: runs)."""
    runs = list(
        GenerationRun.objects.filter(pk__in=run_ids.tolist()).order_by("name").values_list("pk", "name")
    )
    rows = prompt_rows.values()
    return FilterChoices(
        runs=runs,
        models=sorted(model_names.items(), key=lambda kv: kv[1]),
        axes=sorted({(r[9], r[10]) for r in rows if r[9] is not None}, key=lambda kv: kv[1]),
        groups=sorted({(r[3], r[4]) for r in rows if r[3] is not None}, key=lambda kv: kv[1]),
        templates=sorted({(r[1], r[2]) for r in rows if r[1] is not None}, key=lambda kv: kv[1]),
    )


# --------------------------------------------------------------------------- the arrays


@dataclass(frozen=True)
class Category:
    """A scheme category as the statistics see it (code = position in the scheme)."""

    id: int
    key: str
    name: str
    is_refusal: bool
    is_harmful: bool = False


@dataclass(frozen=True)
class Member:
    """A group member (name) with the index of its group."""

    id: int
    name: str
    group: int


@dataclass(frozen=True)
class CampaignArrays:
    """Everything the dashboard's statistics need from one filtered campaign, as weighted numpy arrays.

    Items that agree on everything the statistics look at are read as one row with a weight (how many
    items it stands for), so a million items arrive as a few hundred thousand rows at most:

    - item rows (`item_weight` items each): `item_model`, `item_group`, `item_template`,
      `item_member` index the dimension tuples (-1 = the prompt has none), `counts` is rows x
      categories (the labels' count pattern), `final` the final category code the labelling stored
      (annotations/labelling/final_label.py; -1 = none yet), `gold` the gold code (-1 = not a gold
      item), `adjudicated` the adjudicated code (-1 = none);
    - label sets (`set_weight` items each): items of one model and group with the same annotators
      giving the same categories (and the same gold code): `set_model`, `set_group`, `set_gold`,
      `set_counts` (rows x categories), and their labels `label_set`, `label_annotator`, `label_code`.
    """

    campaign: Campaign
    filters: StatsFilters
    categories: tuple[Category, ...]
    models: tuple[str, ...]
    groups: tuple[str, ...]
    group_is_control: tuple[bool, ...]
    templates: tuple[str, ...]
    members: tuple[Member, ...]
    annotators: tuple[str, ...]
    item_weight: np.ndarray
    item_model: np.ndarray
    item_group: np.ndarray
    item_template: np.ndarray
    item_member: np.ndarray
    counts: np.ndarray
    final: np.ndarray
    gold: np.ndarray
    adjudicated: np.ndarray
    set_weight: np.ndarray
    set_model: np.ndarray
    set_group: np.ndarray
    set_gold: np.ndarray
    set_counts: np.ndarray
    label_set: np.ndarray
    label_annotator: np.ndarray
    label_code: np.ndarray
    choices: FilterChoices | None = None

    @property
    def refusal_codes(self) -> np.ndarray:
        """Codes of the categories the scheme flags as refusal."""
        return np.array([i for i, c in enumerate(self.categories) if c.is_refusal], dtype=np.int64)

    @property
    def n_items(self) -> int:
        """Items in the filter."""
        return int(self.item_weight.sum())

    @property
    def label_weight(self) -> np.ndarray:
        """How many labels each label row stands for (its label set's weight)."""
        return self.set_weight[self.label_set]


def _lookup(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each of `values` in the sorted unique `ids`, or -1 where it does not occur."""
    if ids.size == 0 or values.size == 0:
        return np.full(values.shape, -1, dtype=np.int64)
    low, high = int(ids[0]), int(ids[-1])
    inside = (values >= low) & (values <= high)
    out = np.full(values.shape, -1, dtype=np.int64)
    if high - low <= 4 * ids.size + 1024:  # dense lookup table: O(n), no sorting
        table = np.full(high - low + 1, -1, dtype=np.int64)
        table[ids - low] = np.arange(ids.size)
        out[inside] = table[values[inside] - low]
    else:
        pos = np.searchsorted(ids, values[inside])
        pos_ok = np.minimum(pos, ids.size - 1)
        out[inside] = np.where(ids[pos_ok] == values[inside], pos_ok, -1)
    return out


def _unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's position among them (np.unique with return_inverse).

    Ids drawn from a narrow range (the usual case) take one bincount instead of a sort or hash.
    """
    if values.size == 0:
        return values.astype(np.int64), np.zeros(0, dtype=np.int64)
    low, high = int(values.min()), int(values.max())
    if high - low > 4 * values.size + 1024:
        uniq, inverse = np.unique(values, return_inverse=True)
        return uniq, inverse.astype(np.int64)
    shifted = values - low
    present = np.flatnonzero(np.bincount(shifted, minlength=high - low + 1))
    table = np.zeros(high - low + 1, dtype=np.int64)
    table[present] = np.arange(present.size)
    return present + low, table[shifted]


def _in_own_connection(call: Callable[[], CodedRows]) -> CodedRows:
    try:
        return call()
    finally:
        connections.close_all()  # this worker thread's connections only


def _concurrently(*calls: Callable[[], CodedRows]) -> list[CodedRows]:
    """Run the reads at once, each on its own PostgreSQL connection, so the server uses several cores.

    Inside a transaction (tests, or a caller's atomic block) other connections would not see its
    rows, so the reads then run one after the other on the current connection.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(_in_own_connection, calls))


_ITEM = CampaignItem._meta.db_table
_PROMPT = Prompt._meta.db_table
_GROUP = Group._meta.db_table
_ITEM_TALLY = CampaignItemTally._meta.db_table
_SET_TALLY = LabelSetTally._meta.db_table
# Item rows: (run, model, prompt, final label, adjudicated 0/1, gold label, label pattern, items).
_ITEM_ROWS_TALLY_SQL = f"""SELECT t.run_id, t.endpoint_id, t.prompt_id, t.final_category_id,
    CASE WHEN t.adjudicated THEN 1 ELSE 0 END, t.gold_category_id, d.ord - 1, t.n
FROM {_ITEM_TALLY} t JOIN unnest(%s::text[]) WITH ORDINALITY AS d(label_pattern, ord) USING (label_pattern)
WHERE t.campaign_id = %s AND t.n > 0"""  # noqa: S608 (table names from models)
_PATTERNS_TALLY_SQL = f"""SELECT DISTINCT label_pattern FROM {_ITEM_TALLY}
WHERE campaign_id = %s AND n > 0"""  # noqa: S608
_ITEM_ROWS_SQL = f"""SELECT run_id, endpoint_id, prompt_id, COALESCE(final_category_id, -1),
    CASE WHEN final_source = 'adjudicated' THEN 1 ELSE 0 END, COALESCE(gold_category_id, -1), label_pattern,
    COUNT(*)
FROM {_ITEM} WHERE campaign_id = %s GROUP BY 1, 2, 3, 4, 5, 6, 7"""  # noqa: S608
# Label sets: (model, group, gold label, label signature, items), filtered.
# (Rows of different runs with the same key stay apart: the statistics add weighted rows up anyway.)
_LABEL_SETS_TALLY_SQL = f"""SELECT i.endpoint_id, i.group_id, i.gold_category_id, d.ord - 1, i.n
FROM {_SET_TALLY} i JOIN unnest(%s::text[]) WITH ORDINALITY AS d(label_signature, ord) USING (label_signature)
WHERE i.campaign_id = %s AND i.n > 0 {{where}}"""  # noqa: S608
_SIGNATURES_TALLY_SQL = f"""SELECT DISTINCT label_signature FROM {_SET_TALLY} i
WHERE i.campaign_id = %s AND i.n > 0 {{where}}"""  # noqa: S608
_LABEL_SETS_SQL = f"""SELECT i.endpoint_id, COALESCE(p.group_id, -1), COALESCE(i.gold_category_id, -1),
    i.label_signature, COUNT(*)
FROM {_ITEM} i JOIN {_PROMPT} p ON p.id = i.prompt_id
WHERE i.campaign_id = %s AND i.label_signature <> '' {{where}} GROUP BY 1, 2, 3, 4"""  # noqa: S608
_LABEL_SET_FILTERS = {  # (on the items joined to prompts, on the label-set tally)
    "run": ("i.run_id = %s", "i.run_id = %s"),
    "model": ("i.endpoint_id = %s", "i.endpoint_id = %s"),
    "template": ("p.template_id = %s", None),
    "group": ("p.group_id = %s", "i.group_id = %s"),
    "axis": (
        f"p.group_id IN (SELECT g.id FROM {_GROUP} g WHERE g.axis_id = %s)",  # noqa: S608
        f"i.group_id IN (SELECT g.id FROM {_GROUP} g WHERE g.axis_id = %s)",  # noqa: S608
    ),
}


def use_tallies() -> bool:
    """The tallies exist (kept by triggers) on PostgreSQL only; elsewhere the items are grouped."""
    return connection.vendor == "postgresql"


@dataclass(frozen=True)
class CodedRows:
    """Rows of whole numbers whose column `text_column` indexes `texts` (a pattern or a signature)."""

    rows: np.ndarray
    texts: list[str]
    text_column: int

    def as_tuples(self) -> list[tuple]:
        """The rows with their text in place of its index (tests compare the two ways of reading)."""
        out = []
        for row in self.rows.tolist():
            row[self.text_column] = self.texts[row[self.text_column]]
            out.append(tuple(row))
        return out


def _coded(rows: list[tuple], n_columns: int, text_column: int) -> CodedRows:
    """Fetched rows with one text column as CodedRows (the direct path: few rows)."""
    texts = sorted({row[text_column] for row in rows})
    index = {text: i for i, text in enumerate(texts)}
    matrix = np.array(
        [[index[v] if c == text_column else v for c, v in enumerate(row)] for row in rows], dtype=np.int64
    )
    return CodedRows(matrix.reshape(len(rows), n_columns), texts, text_column)


def _coded_tally(texts_sql: str, rows_sql: str, params: list, n_columns: int, text_column: int) -> CodedRows:
    """A tally's distinct texts, then its rows with each text's position, in one snapshot, by binary COPY.

    The rows arrive as fixed-width whole numbers (numpy reads them without a Python object per
    value); each distinct pattern or signature is parsed once. REPEATABLE READ makes both statements
    see the same tally, so every row's text is in the list.
    """
    outer = connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if not outer:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SET LOCAL work_mem = '64MB'")  # hash a few hundred thousand rows in memory
        cursor.execute(texts_sql, params)
        texts = sorted(row[0] for row in cursor.fetchall())
        rows = _copy_binary(cursor, rows_sql, [texts, *params], n_columns)
    return CodedRows(rows, texts, text_column)


def item_rows(campaign_id: int, *, from_tallies: bool | None = None) -> CodedRows:
    """The campaign's item rows (see CampaignArrays), from the tallies or by grouping the items.

    Columns: run, model, prompt, final category (-1), adjudicated (0/1), gold category (-1),
    label pattern (index into `texts`), items.
    """
    if from_tallies is None:
        from_tallies = use_tallies()
    if from_tallies:
        return _coded_tally(_PATTERNS_TALLY_SQL, _ITEM_ROWS_TALLY_SQL, [campaign_id], 8, 6)
    with connection.cursor() as cursor:
        cursor.execute(_ITEM_ROWS_SQL, [campaign_id])
        return _coded(cursor.fetchall(), 8, 6)


def label_set_rows(filters: StatsFilters, *, from_tallies: bool | None = None) -> CodedRows:
    """The filtered campaign's label sets (see CampaignArrays), from the tallies or by grouping the items.

    Columns: model, group (-1), gold category (-1), label signature (index into `texts`), items.
    The tally has no template column: a template filter groups the (then few) items instead.
    """
    if from_tallies is None:
        from_tallies = use_tallies()
    from_tallies = from_tallies and filters.template is None and filters.attribute is None
    where, params = [], [filters.campaign]
    for name, (on_items, on_tally) in _LABEL_SET_FILTERS.items():
        value = getattr(filters, name)
        if value is not None:
            where.append(f"AND {on_tally if from_tallies else on_items}")
            params.append(value)
    members_sql, member_params = member_filter_sql(filters)
    if members_sql:
        where.append(f"AND {members_sql}")
        params += member_params
    where_sql = " ".join(where)
    if from_tallies:
        return _coded_tally(
            _SIGNATURES_TALLY_SQL.format(where=where_sql),
            _LABEL_SETS_TALLY_SQL.format(where=where_sql),
            params,
            5,
            3,
        )
    with connection.cursor() as cursor:
        cursor.execute(_LABEL_SETS_SQL.format(where=where_sql), params)
        return _coded(cursor.fetchall(), 5, 3)


_PGCOPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _copy_binary(cursor, sql: str, params, n_columns: int) -> np.ndarray:
    """Run `sql` through `COPY ... TO STDOUT (FORMAT binary)` with every column cast to bigint.

    Each tuple is then a fixed 2 + 12 * n_columns bytes (field count, then length + 8-byte value
    per field), so the whole stream is one numpy record array.
    """
    columns = ", ".join(f"CAST(q.c{i} AS bigint)" for i in range(n_columns))
    aliases = ", ".join(f"c{i}" for i in range(n_columns))
    # COPY takes no parameters of its own: the driver binds them (mogrify).
    copy = f"COPY (SELECT {columns} FROM ({sql}) AS q({aliases})) TO STDOUT (FORMAT binary)"  # noqa: S608
    buffer = io.BytesIO()
    cursor.copy_expert(cursor.mogrify(copy, params).decode(), buffer)
    raw = buffer.getbuffer()
    if bytes(raw[:11]) != _PGCOPY_SIGNATURE:
        raise RuntimeError("unexpected COPY binary header")
    start = 19 + int.from_bytes(raw[15:19], "big")
    body = np.frombuffer(raw, dtype=np.uint8, offset=start, count=len(raw) - 2 - start)
    row_size = 2 + 12 * n_columns
    n_rows, rest = divmod(body.size, row_size)
    if rest:
        raise RuntimeError("COPY returned rows of unexpected width (NULLs or other types)")
    if n_rows == 0:
        return np.zeros((0, n_columns), dtype=np.int64)

    def strided(dtype: str, offset: int, columns: int) -> np.ndarray:
        # one view per field kind: rows are row_size apart, fields 12 bytes apart
        return np.ndarray((n_rows, columns), dtype=dtype, buffer=body, offset=offset, strides=(row_size, 12))

    if np.any(strided(">i2", 0, 1) != n_columns) or np.any(strided(">i4", 2, n_columns) != 8):
        raise RuntimeError("COPY returned NULLs or unexpected columns")
    return strided(">i8", 6, n_columns).astype(np.int64)


def _prompt_dimensions(prompt_ids: np.ndarray) -> dict[int, tuple]:
    rows = (
        Prompt.objects.filter(pk__in=prompt_ids.tolist())
        .order_by()
        .values_list(
            "pk",
            "template_id",
            "template__key",
            "group_id",
            "group__name",
            "group__is_control",
            "member_id",
            "member__value",
            "member__group_id",
            "group__axis_id",
            "group__axis__name",
        )
    )
    return {row[0]: row for row in rows}


def _category_coder(categories: tuple[Category, ...]):
    """A function mapping category ids to codes (scheme positions), -1 for ids outside the scheme."""
    category_ids = np.array(sorted(c.id for c in categories), dtype=np.int64)
    position_code = {c.id: i for i, c in enumerate(categories)}
    code_of_sorted = np.array([position_code[cid] for cid in category_ids.tolist()], dtype=np.int64)

    def code(ids: np.ndarray) -> np.ndarray:
        position = _lookup(category_ids, ids)
        if not categories:
            return np.full(ids.shape, NO_LABEL, dtype=np.int64)
        return np.where(position >= 0, code_of_sorted[np.maximum(position, 0)], NO_LABEL)

    return code


@dataclass(frozen=True)
class _PromptIndices:
    groups: tuple[str, ...]
    group_ids: tuple[int, ...]
    group_is_control: tuple[bool, ...]
    templates: tuple[str, ...]
    members: tuple[Member, ...]
    item_group: np.ndarray
    item_template: np.ndarray
    item_member: np.ndarray


def _prompt_indices(prompt_rows: dict[int, tuple], item_prompt_ids: np.ndarray) -> _PromptIndices:
    """Templates, groups (control first) and members present, and each item's index into them."""
    prompt_ids, item_prompt = _unique(item_prompt_ids)
    present = [prompt_rows[p] for p in prompt_ids.tolist()]
    template_map, group_map, member_map = {}, {}, {}
    for row in sorted(present, key=lambda r: (r[2] or "", r[4] or "", r[7] or "")):
        if row[1] is not None:
            template_map.setdefault(row[1], row[2])
        if row[3] is not None:
            group_map.setdefault(row[3], (row[4], row[5]))
    group_ids = sorted(group_map, key=lambda g: (not group_map[g][1], group_map[g][0]))
    group_index = {g: i for i, g in enumerate(group_ids)}
    for row in sorted(present, key=lambda r: r[7] or ""):
        if row[6] is not None:
            member_map.setdefault(row[6], Member(row[6], row[7], group_index.get(row[8], -1)))
    template_index = {t: i for i, t in enumerate(template_map)}
    member_index = {m: i for i, m in enumerate(member_map)}

    def per_item(column: int, index: dict) -> np.ndarray:
        table = np.array([index.get(row[column], -1) for row in present], dtype=np.int64)
        return table[item_prompt] if item_prompt.size else np.zeros(0, dtype=np.int64)

    return _PromptIndices(
        groups=tuple(group_map[g][0] for g in group_ids),
        group_ids=tuple(group_ids),
        group_is_control=tuple(group_map[g][1] for g in group_ids),
        templates=tuple(template_map.values()),
        members=tuple(member_map.values()),
        item_group=per_item(3, group_index),
        item_template=per_item(1, template_index),
        item_member=per_item(6, member_index),
    )


@dataclass(frozen=True)
class _LabelSets:
    weight: np.ndarray
    model: np.ndarray
    group: np.ndarray
    gold: np.ndarray
    counts: np.ndarray
    label_set: np.ndarray
    label_annotator: np.ndarray
    label_code: np.ndarray
    annotator_ids: np.ndarray


def _label_sets(sets: CodedRows, *, code, k: int, model_ids: np.ndarray, group_ids) -> _LabelSets:
    """The label-set rows as arrays: model and group indices, gold code, and one row per label.

    Each distinct signature is parsed once; the labels of every set are then gathered with numpy.
    """
    rows = sets.rows
    n_sets = rows.shape[0]
    set_model = _lookup(model_ids, rows[:, 0])
    group_position = np.array(group_ids, dtype=np.int64)
    group_order = np.argsort(group_position)
    set_group_pos = _lookup(group_position[group_order], rows[:, 1])
    set_group = np.where(set_group_pos >= 0, group_order[np.maximum(set_group_pos, 0)], -1)
    set_gold = code(rows[:, 2])
    set_weight = rows[:, 4].copy()
    sig_size, flat = signatures_parse(sets.texts)
    sig_offset = np.cumsum(sig_size) - sig_size
    size = sig_size[rows[:, 3]]
    first = np.cumsum(size) - size
    position = np.repeat(sig_offset[rows[:, 3]] - first, size) + np.arange(int(size.sum()))
    label_set = np.repeat(np.arange(n_sets, dtype=np.int64), size)
    label_annotator_id, label_code = flat[position, 0], code(flat[position, 1])
    known = label_code >= 0
    label_set, label_code = label_set[known], label_code[known]
    annotator_ids, label_annotator = _unique(label_annotator_id[known])
    set_counts = np.bincount(label_set * k + label_code, minlength=n_sets * k).reshape(n_sets, k)
    return _LabelSets(
        set_weight, set_model, set_group, set_gold, set_counts, label_set,
        label_annotator.astype(np.int64), label_code, annotator_ids,
    )  # fmt: skip


def campaign_arrays(*, filters: StatsFilters) -> CampaignArrays:
    """Load the filtered campaign as weighted arrays (see CampaignArrays).

    The item rows and the label sets (see the module docstring) are read at once on two connections,
    then a few small dimension queries. The item rows are read for the whole campaign (the filter
    choices come from them) and filtered here as masks; the label sets are filtered in SQL.
    """
    campaign = campaign_get_for_stats(campaign_id=filters.campaign)
    categories = tuple(
        Category(c.pk, c.key, c.name, c.counts_as_refusal, c.counts_as_harmful)
        for c in campaign.scheme.categories.order_by("order")
    )
    code = _category_coder(categories)
    k = len(categories)
    items, sets = _concurrently(lambda: item_rows(filters.campaign), lambda: label_set_rows(filters))

    # ---- item rows
    n_rows = items.rows.shape[0]
    run_id, model_id, prompt_id, final_id, is_adjudicated, gold_id, pattern, weight = items.rows.T
    pattern_counts = np.zeros((len(items.texts), k), dtype=np.int64)
    for i, text in enumerate(items.texts):
        label_codes = code(np.array(pattern_category_ids(text), dtype=np.int64))
        np.add.at(pattern_counts[i], label_codes[label_codes >= 0], 1)
    counts = pattern_counts[pattern]

    prompt_ids, _ = _unique(prompt_id)
    prompt_rows = _prompt_dimensions(prompt_ids)
    all_model_ids, _ = _unique(model_id)
    model_names = dict(ModelEndpoint.objects.filter(pk__in=all_model_ids.tolist()).values_list("pk", "name"))
    choices = _filter_choices(_unique(run_id)[0], model_names, prompt_rows)
    keep = np.ones(n_rows, dtype=bool)
    if filters.run is not None:
        keep &= run_id == filters.run
    if filters.model is not None:
        keep &= model_id == filters.model
    for name, column in (("template", 1), ("group", 3), ("axis", 9)):
        wanted = getattr(filters, name)
        if wanted is not None:
            match = np.array([prompt_rows[p][column] == wanted for p in prompt_ids.tolist()], dtype=bool)
            keep &= match[np.searchsorted(prompt_ids, prompt_id)]
    if filters.attribute is not None:
        wanted_members = set(attribute_member_ids(filters.attribute))
        match = np.array([prompt_rows[p][6] in wanted_members for p in prompt_ids.tolist()], dtype=bool)
        keep &= match[np.searchsorted(prompt_ids, prompt_id)]
    model_id, prompt_id, weight, counts = model_id[keep], prompt_id[keep], weight[keep], counts[keep]
    final = code(final_id[keep])  # as the labelling stored it: the final-label rule is applied there
    adjudicated = np.where(is_adjudicated[keep] == 1, final, NO_LABEL)
    gold = code(gold_id[keep])
    model_ids, item_model = _unique(model_id)
    dims = _prompt_indices(prompt_rows, prompt_id)

    sets = _label_sets(sets, code=code, k=k, model_ids=model_ids, group_ids=dims.group_ids)
    users = dict(
        get_user_model().objects.filter(pk__in=sets.annotator_ids.tolist()).values_list("pk", "username")
    )
    return CampaignArrays(
        campaign=campaign,
        filters=filters,
        categories=categories,
        models=tuple(model_names.get(m, f"model {m}") for m in model_ids.tolist()),
        groups=dims.groups,
        group_is_control=dims.group_is_control,
        templates=dims.templates,
        members=dims.members,
        annotators=tuple(users.get(a, f"user {a}") for a in sets.annotator_ids.tolist()),
        item_weight=weight,
        item_model=item_model.astype(np.int64),
        item_group=dims.item_group,
        item_template=dims.item_template,
        item_member=dims.item_member,
        counts=counts,
        final=final,
        gold=gold,
        adjudicated=adjudicated,
        set_weight=sets.weight,
        set_model=sets.model,
        set_group=sets.group,
        set_gold=sets.gold,
        set_counts=sets.counts,
        label_set=sets.label_set,
        label_annotator=sets.label_annotator,
        label_code=sets.label_code,
        choices=choices,
    )


# --------------------------------------------------------------------------- counts for disparity


@dataclass(frozen=True)
class OutcomeUnits:
    """The units disparity is computed over: final labels (one per item) or every individual label.

    Each array has one entry per kind of unit: model, group, template and member indices, the
    category, and `weight`, how many units of that kind there are.
    """

    source: LabelSource
    model: np.ndarray
    group: np.ndarray
    template: np.ndarray
    member: np.ndarray
    code: np.ndarray
    weight: np.ndarray


def outcome_units(data: CampaignArrays, source: LabelSource | None = None) -> OutcomeUnits:
    """Units for `source` (default: the filters' label source); items without a final label drop out."""
    source = source or data.filters.source
    if source == "final":
        rows = np.flatnonzero(data.final >= 0)
        code = data.final[rows]
        weight = data.item_weight[rows]
    else:  # every label: one unit kind per item row and category it has labels of
        rows, code = np.nonzero(data.counts)
        weight = data.item_weight[rows] * data.counts[rows, code]
    return OutcomeUnits(
        source,
        data.item_model[rows],
        data.item_group[rows],
        data.item_template[rows],
        data.item_member[rows],
        code.astype(np.int64),
        weight,
    )


def _bincount_nd(indices: list[np.ndarray], shape: tuple[int, ...], weights: np.ndarray) -> np.ndarray:
    """Weighted counts over the cartesian index `indices` (rows with any -1 index dropped), as `shape`."""
    keep = np.ones(indices[0].shape, dtype=bool)
    for idx in indices:
        keep &= idx >= 0
    flat = (
        np.ravel_multi_index([idx[keep] for idx in indices], shape) if keep.any() else np.zeros(0, np.int64)
    )
    return weighted_bincount(flat, weights[keep], int(np.prod(shape))).reshape(shape)


def weighted_bincount(values: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """np.bincount with integer weights, as exact int64 counts of length `size`."""
    if values.size == 0:
        return np.zeros(size, dtype=np.int64)
    return np.rint(np.bincount(values, weights=weights, minlength=size)).astype(np.int64)


def model_group_category_counts(data: CampaignArrays, units: OutcomeUnits) -> np.ndarray:
    """(n_models, n_groups, n_categories) counts of outcome units."""
    shape = (len(data.models), len(data.groups), len(data.categories))
    return _bincount_nd([units.model, units.group, units.code], shape, units.weight)


def model_template_group_category_counts(data: CampaignArrays, units: OutcomeUnits) -> np.ndarray:
    """(n_models, n_templates, n_groups, n_categories) counts: the counterfactual and template drill-down."""
    shape = (len(data.models), len(data.templates), len(data.groups), len(data.categories))
    return _bincount_nd([units.model, units.template, units.group, units.code], shape, units.weight)


def model_member_category_counts(data: CampaignArrays, units: OutcomeUnits) -> np.ndarray:
    """(n_models, n_members, n_categories) counts: the per-name drill-down."""
    shape = (len(data.models), len(data.members), len(data.categories))
    return _bincount_nd([units.model, units.member, units.code], shape, units.weight)


def member_attributes(*, member_ids: list[int]) -> dict[int, dict]:
    """Each member's free attributes (GroupMember.attributes), {} where not a JSON object: one query."""
    rows = GroupMember.objects.filter(pk__in=member_ids).values_list("pk", "attributes")
    return {pk: attrs if isinstance(attrs, dict) else {} for pk, attrs in rows}


def scope_masks(data: CampaignArrays) -> list[tuple[str, str, np.ndarray]]:
    """(scope kind, name, item-row mask) for the campaign, each model and each group."""
    masks = [("campaign", data.campaign.name, np.ones(data.counts.shape[0], dtype=bool))]
    masks += [("model", name, data.item_model == i) for i, name in enumerate(data.models)]
    masks += [("group", name, data.item_group == i) for i, name in enumerate(data.groups)]
    return masks


# --------------------------------------------------------------------------- annotators


def campaign_annotator_names(*, campaign: Campaign) -> list[str]:
    """Usernames of the annotators assigned to the campaign (those without labels included)."""
    return list(campaign.annotators.order_by("username").values_list("username", flat=True))
