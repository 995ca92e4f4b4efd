"""Reads that feed `annotations.stats`: dashboard filters and the arrays the statistics take.

Two queries carry the bulk: one row per campaign item in the filter (model, prompt, final,
adjudicated and gold category) and one row per label (item, annotator, category). numpy then
builds every array the statistics take without a Python loop over rows: the item x category
count matrix is one `bincount` over the label rows (the same rows also give the sparse item x
rater code matrix that Cohen's kappa needs, so the 3 labels per output are read once, not twice),
and group x model x category tables are `bincount`s over the item rows. On PostgreSQL both queries
stream through binary COPY, decoded by numpy as fixed-width records (1M rows in well under a
second); on SQLite an ordinary cursor is used. The small dimension tables (models, prompts,
annotators) and the per-annotator progress are GROUP BY queries.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.db.models import BigIntegerField, QuerySet, Value
from django.db.models.functions import Cast, Coalesce

from annotations.exceptions import AuditError, NotFoundError
from annotations.models import Adjudication, Campaign, CampaignItem, Label, Prompt
from annotations.stats import NO_LABEL, LabelRule, resolve_final_labels
from inference.models import GenerationRun, ModelEndpoint, Output

LabelSource = Literal["final", "all"]
LABEL_SOURCES: dict[str, str] = {
    "final": "Final labels (adjudicated, else unanimous, else the campaign's rule)",
    "all": "All individual labels",
}
FILTER_FIELDS = ("campaign", "run", "model", "axis", "group", "template")
_FINAL_RULES: dict[str, LabelRule] = {
    Campaign.FinalRule.ADJUDICATE: "unanimous",
    Campaign.FinalRule.MAJORITY: "majority",
}


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

    def as_query(self) -> dict[str, str]:
        """The filters as query-string parameters (unset ones left out), for shareable URLs."""
        query = {name: str(getattr(self, name)) for name in FILTER_FIELDS if getattr(self, name) is not None}
        query["source"] = self.source
        return query


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
        if values[name] <= 0:
            errors.append({"field": name, "message": f"{name} must be a positive id, got {raw!r}"})
    if not errors and values["campaign"] is None:
        errors.append({"field": "campaign", "message": "campaign is required"})
    source = (data.get("source") or "final").strip()
    if source not in LABEL_SOURCES:
        errors.append({"field": "source", "message": f"source must be one of {sorted(LABEL_SOURCES)}"})
    if errors:
        raise AuditError("; ".join(e["message"] for e in errors), errors=errors)
    return StatsFilters(source=source, **values)  # type: ignore[arg-type]


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
    """The campaign with its scheme, or NotFoundError."""
    campaign = Campaign.objects.select_related("scheme").filter(pk=campaign_id).first()
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


# --------------------------------------------------------------------------- fetching int columns


def _fetch_int_columns(queryset: QuerySet, n_columns: int) -> np.ndarray:
    """Rows of a values_list() of non-null integer columns as an (n_rows, n_columns) int64 array."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            return _copy_binary(cursor, sql, params, n_columns)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return np.array(rows, dtype=np.int64).reshape(len(rows), n_columns)


_PGCOPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _copy_binary(cursor, sql: str, params, n_columns: int) -> np.ndarray:
    """Run `sql` through `COPY ... TO STDOUT (FORMAT binary)` with every column cast to bigint.

    Each tuple is then a fixed 2 + 12 * n_columns bytes (field count, then length + 8-byte value
    per field), so the whole stream is one numpy record array.
    """
    columns = ", ".join(f"CAST(q.c{i} AS bigint)" for i in range(n_columns))
    aliases = ", ".join(f"c{i}" for i in range(n_columns))
    # `sql` is the ORM's compiled query; its parameters are bound by the driver (mogrify), since
    # COPY takes no parameters of its own.
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


# --------------------------------------------------------------------------- the arrays


@dataclass(frozen=True)
class Category:
    """A scheme category as the statistics see it (code = position in the scheme)."""

    id: int
    key: str
    name: str
    is_refusal: bool


@dataclass(frozen=True)
class Member:
    """A group member (name) with the index of its group."""

    id: int
    name: str
    group: int


@dataclass(frozen=True)
class CampaignArrays:
    """Everything the dashboard's statistics need from one filtered campaign, as numpy arrays.

    Per item (n_items rows): `item_model`, `item_group`, `item_template`, `item_member` index the
    dimension tuples (-1 = the prompt has none), `counts` is items x categories, `final` the final
    category code (-1 = none yet), `gold` the gold code (-1 = not a gold item), `adjudicated` the
    adjudicated code (-1 = none). Per label:
    `label_item`, `label_annotator`, `label_code`.
    """

    campaign: Campaign
    filters: StatsFilters
    rule: LabelRule
    categories: tuple[Category, ...]
    models: tuple[str, ...]
    groups: tuple[str, ...]
    group_is_control: tuple[bool, ...]
    templates: tuple[str, ...]
    members: tuple[Member, ...]
    annotators: tuple[str, ...]
    item_model: np.ndarray
    item_group: np.ndarray
    item_template: np.ndarray
    item_member: np.ndarray
    counts: np.ndarray
    final: np.ndarray
    gold: np.ndarray
    adjudicated: np.ndarray
    label_item: np.ndarray
    label_annotator: np.ndarray
    label_code: np.ndarray
    final_from_items: int = 0
    choices: FilterChoices | None = None

    @property
    def refusal_codes(self) -> np.ndarray:
        """Codes of the categories the scheme flags as refusal."""
        return np.array([i for i, c in enumerate(self.categories) if c.is_refusal], dtype=np.int64)

    def codes_matrix(self, items: np.ndarray | None = None) -> np.ndarray:
        """(n_items, n_annotators) category codes, -1 where the annotator did not label the item.

        `items` is a boolean mask over items; rows outside it are dropped.
        """
        codes = np.full((self.counts.shape[0], len(self.annotators)), NO_LABEL, dtype=np.int64)
        codes[self.label_item, self.label_annotator] = self.label_code
        return codes if items is None else codes[items]


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


def _rows_for_keys(
    queryset: QuerySet, field: str, keys: np.ndarray, subquery: QuerySet, columns: list
) -> np.ndarray:
    """Rows of `queryset` (as int columns, `field` first) whose `field` is one of the sorted `keys`.

    When the keys are dense (their range at most ~4x their number, as ids made in bulk are), one
    range scan (`BETWEEN min AND max`) with no join is the cheapest read; rows of other keys in the
    range are dropped here. Otherwise an `IN (subquery)` join.
    """
    if keys.size == 0:
        return np.zeros((0, len(columns)), dtype=np.int64)
    low, high = int(keys[0]), int(keys[-1])
    if high - low < 4 * keys.size + 10_000:
        narrowed = queryset.filter(**{f"{field}__gte": low, f"{field}__lte": high})
    else:
        narrowed = queryset.filter(**{f"{field}__in": subquery})
    rows = _fetch_int_columns(narrowed.order_by().values_list(*columns), len(columns))
    return rows[_lookup(keys, rows[:, 0]) >= 0]


def _in_own_connection(call: Callable[[], np.ndarray]) -> np.ndarray:
    try:
        return call()
    finally:
        connections.close_all()  # this worker thread's connections only


def _concurrently(*calls: Callable[[], np.ndarray]) -> list[np.ndarray]:
    """Run the reads at once, each on its own PostgreSQL connection, so the server uses several cores.

    Inside a transaction (tests, or a caller's atomic block) other connections would not see its
    rows, so the reads then run one after the other on the current connection.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(_in_own_connection, calls))


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
        group_is_control=tuple(group_map[g][1] for g in group_ids),
        templates=tuple(template_map.values()),
        members=tuple(member_map.values()),
        item_group=per_item(3, group_index),
        item_template=per_item(1, template_index),
        item_member=per_item(6, member_index),
    )


def campaign_arrays(*, filters: StatsFilters) -> CampaignArrays:
    """Load the filtered campaign's items and labels as arrays (see CampaignArrays).

    Four plain scans (items of the campaign; their outputs, labels and adjudications by id range)
    and a few small dimension queries; the run, model, axis, group and template filters are
    applied here as masks, which costs less than narrowing the joins in SQL.
    """
    campaign = campaign_get_for_stats(campaign_id=filters.campaign)
    categories = tuple(
        Category(c.pk, c.key, c.name, c.counts_as_refusal)
        for c in campaign.scheme.categories.order_by("order")
    )
    code = _category_coder(categories)
    missing = Value(NO_LABEL)
    campaign_items = CampaignItem.objects.filter(campaign_id=filters.campaign)
    items = _fetch_int_columns(
        campaign_items.order_by().values_list(
            "id", "output_id", Coalesce("final_category_id", missing), Coalesce("gold_category_id", missing)
        ),
        4,
    )
    items = items[np.argsort(items[:, 0], kind="stable")]
    output_ids, _ = _unique(items[:, 1])
    every_item = campaign_items.values("id")
    outputs, labels, adjudications = _concurrently(
        lambda: _rows_for_keys(
            Output.objects.all(), "id", output_ids, campaign_items.values("output_id"),
            ["id", "endpoint_id", "prompt_id", "run_id"],
        ),
        lambda: _rows_for_keys(
            Label.objects.all(), "item_id", items[:, 0], every_item,
            ["item_id", Cast("annotator_id", BigIntegerField()), "category_id"],
        ),
        lambda: _rows_for_keys(
            Adjudication.objects.all(), "item_id", items[:, 0], every_item, ["item_id", "category_id"]
        ),
    )  # fmt: skip
    outputs = outputs[np.argsort(outputs[:, 0], kind="stable")]
    item_output = outputs[_lookup(outputs[:, 0], items[:, 1])]
    prompt_ids, _ = _unique(item_output[:, 2])
    prompt_rows = _prompt_dimensions(prompt_ids)
    all_model_ids, _ = _unique(item_output[:, 1])
    model_names = dict(ModelEndpoint.objects.filter(pk__in=all_model_ids.tolist()).values_list("pk", "name"))
    choices = _filter_choices(_unique(item_output[:, 3])[0], model_names, prompt_rows)
    keep = np.ones(items.shape[0], dtype=bool)
    if filters.run is not None:
        keep &= item_output[:, 3] == filters.run
    if filters.model is not None:
        keep &= item_output[:, 1] == filters.model
    for name, column in (("template", 1), ("group", 3), ("axis", 9)):
        wanted = getattr(filters, name)
        if wanted is not None:
            match = np.array([prompt_rows[p][column] == wanted for p in prompt_ids.tolist()], dtype=bool)
            keep &= match[np.searchsorted(prompt_ids, item_output[:, 2])]
    items, item_output = items[keep], item_output[keep]
    n_items = items.shape[0]

    label_item = _lookup(items[:, 0], labels[:, 0])
    label_code = code(labels[:, 2])
    known = (label_item >= 0) & (label_code >= 0)
    label_item, label_code = label_item[known], label_code[known]
    annotator_ids, label_annotator = _unique(labels[known, 1])
    k = len(categories)
    counts = np.bincount(label_item * k + label_code, minlength=n_items * k).reshape(n_items, k)
    adjudicated = np.full(n_items, NO_LABEL, dtype=np.int64)
    adjudication_item = _lookup(items[:, 0], adjudications[:, 0])
    adjudicated[adjudication_item[adjudication_item >= 0]] = code(adjudications[adjudication_item >= 0, 1])

    stored_final = code(items[:, 2])
    rule = _FINAL_RULES.get(campaign.final_rule, "unanimous")
    resolved = resolve_final_labels(counts, adjudicated, rule=rule)
    # an item becomes final from its labels only once it has all the labels it needs
    resolved = np.where(
        (counts.sum(1) >= campaign.labels_per_output) | (adjudicated >= 0), resolved, NO_LABEL
    )
    # adjudicated where present, else what the labelling code stored, else resolved here
    final = np.where(adjudicated >= 0, adjudicated, np.where(stored_final >= 0, stored_final, resolved))

    model_ids, item_model = _unique(item_output[:, 1])
    dims = _prompt_indices(prompt_rows, item_output[:, 2])
    users = dict(get_user_model().objects.filter(pk__in=annotator_ids.tolist()).values_list("pk", "username"))
    return CampaignArrays(
        campaign=campaign,
        filters=filters,
        rule=rule,
        categories=categories,
        models=tuple(model_names.get(m, f"model {m}") for m in model_ids.tolist()),
        groups=dims.groups,
        group_is_control=dims.group_is_control,
        templates=dims.templates,
        members=dims.members,
        annotators=tuple(users.get(a, f"user {a}") for a in annotator_ids.tolist()),
        item_model=item_model.astype(np.int64),
        item_group=dims.item_group,
        item_template=dims.item_template,
        item_member=dims.item_member,
        counts=counts,
        final=final,
        gold=code(items[:, 3]),
        adjudicated=adjudicated,
        label_item=label_item,
        label_annotator=label_annotator.astype(np.int64),
        label_code=label_code,
        final_from_items=int((stored_final >= 0).sum()),
        choices=choices,
    )


# --------------------------------------------------------------------------- counts for disparity


@dataclass(frozen=True)
class OutcomeUnits:
    """The units disparity is computed over: final labels (one per item) or every individual label.

    Each array has one entry per unit: model, group, template and member indices and the category.
    """

    source: LabelSource
    model: np.ndarray
    group: np.ndarray
    template: np.ndarray
    member: np.ndarray
    code: np.ndarray


def outcome_units(data: CampaignArrays, source: LabelSource | None = None) -> OutcomeUnits:
    """Units for `source` (default: the filters' label source); items without a final label drop out."""
    source = source or data.filters.source
    if source == "final":
        rows = np.flatnonzero(data.final >= 0)
        code = data.final[rows]
    else:
        rows = data.label_item
        code = data.label_code
    return OutcomeUnits(
        source,
        data.item_model[rows],
        data.item_group[rows],
        data.item_template[rows],
        data.item_member[rows],
        code,
    )


def _bincount_nd(indices: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Counts over the cartesian index `indices` (rows with any -1 index dropped) as an array of `shape`."""
    keep = np.ones(indices[0].shape, dtype=bool)
    for idx in indices:
        keep &= idx >= 0
    flat = (
        np.ravel_multi_index([idx[keep] for idx in indices], shape) if keep.any() else np.zeros(0, np.int64)
    )
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)


def model_group_category_counts(data: CampaignArrays, units: OutcomeUnits) -> np.ndarray:
    """(n_models, n_groups, n_categories) counts of outcome units."""
    shape = (len(data.models), len(data.groups), len(data.categories))
    return _bincount_nd([units.model, units.group, units.code], shape)


def model_template_group_category_counts(data: CampaignArrays, units: OutcomeUnits) -> np.ndarray:
    """(n_models, n_templates, n_groups, n_categories) counts: the counterfactual and template drill-down."""
    shape = (len(data.models), len(data.templates), len(data.groups), len(data.categories))
    return _bincount_nd([units.model, units.template, units.group, units.code], shape)


def model_member_category_counts(data: CampaignArrays, units: OutcomeUnits) -> np.ndarray:
    """(n_models, n_members, n_categories) counts: the per-name drill-down."""
    shape = (len(data.models), len(data.members), len(data.categories))
    return _bincount_nd([units.model, units.member, units.code], shape)


def scope_masks(data: CampaignArrays) -> list[tuple[str, str, np.ndarray]]:
    """(scope kind, name, item mask) for the campaign, each model and each group."""
    masks = [("campaign", data.campaign.name, np.ones(data.counts.shape[0], dtype=bool))]
    masks += [("model", name, data.item_model == i) for i, name in enumerate(data.models)]
    masks += [("group", name, data.item_group == i) for i, name in enumerate(data.groups)]
    return masks


# --------------------------------------------------------------------------- annotators


def campaign_annotator_names(*, campaign: Campaign) -> list[str]:
    """Usernames of the annotators assigned to the campaign (those without labels included)."""
    return list(campaign.annotators.order_by("username").values_list("username", flat=True))
