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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import BigIntegerField, QuerySet, Value
from django.db.models.functions import Cast, Coalesce

from annotations.exceptions import AuditError, NotFoundError
from annotations.models import Campaign, CampaignItem, Group, GroupAxis, Label, Prompt, PromptTemplate
from annotations.stats import NO_LABEL, LabelRule, resolve_final_labels
from inference.models import GenerationRun, ModelEndpoint

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
    """What each filter can be set to within one campaign (for the filter form)."""

    campaigns: list[tuple[int, str]]
    runs: list[tuple[int, str]]
    models: list[tuple[int, str]]
    axes: list[tuple[int, str]]
    groups: list[tuple[int, str]]
    templates: list[tuple[int, str]]


def stats_filter_choices(*, campaign: Campaign) -> FilterChoices:
    """Runs, models, axes, groups and templates that occur in the campaign (one query each)."""
    outputs = CampaignItem.objects.filter(campaign=campaign).values("output")
    prompts = Prompt.objects.filter(outputs__in=outputs)
    return FilterChoices(
        campaigns=list(Campaign.objects.order_by("name").values_list("pk", "name")),
        runs=list(GenerationRun.objects.filter(outputs__in=outputs).distinct().values_list("pk", "name")),
        models=list(
            ModelEndpoint.objects.filter(outputs__in=outputs)
            .distinct()
            .order_by("name")
            .values_list("pk", "name")
        ),
        axes=list(
            GroupAxis.objects.filter(groups__prompts__in=prompts)
            .distinct()
            .order_by("name")
            .values_list("pk", "name")
        ),
        groups=list(
            Group.objects.filter(prompts__in=prompts).distinct().order_by("name").values_list("pk", "name")
        ),
        templates=list(
            PromptTemplate.objects.filter(pk__in=prompts.values("template"))
            .order_by("key")
            .values_list("pk", "key")
        ),
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
    body = raw[start : len(raw) - 2]
    record = np.dtype(
        [("n", ">i2"), *[(f"f{i}", [("len", ">i4"), ("value", ">i8")]) for i in range(n_columns)]]
    )
    rows = np.frombuffer(body, dtype=record)
    if rows.size and (
        np.any(rows["n"] != n_columns) or any(np.any(rows[f"f{i}"]["len"] != 8) for i in range(n_columns))
    ):
        raise RuntimeError("COPY returned NULLs or unexpected columns")
    return (
        np.column_stack([rows[f"f{i}"]["value"].astype(np.int64) for i in range(n_columns)])
        if rows.size
        else (np.zeros((0, n_columns), dtype=np.int64))
    )


def _index_of(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each of `values` in the sorted unique `ids` (every value must occur)."""
    if ids.size == 0:
        return np.zeros(values.shape, dtype=np.int64)
    low, high = int(ids[0]), int(ids[-1])
    if high - low <= 4 * ids.size + 1024:  # dense lookup table: O(n), no sorting
        lookup = np.full(high - low + 1, -1, dtype=np.int64)
        lookup[ids - low] = np.arange(ids.size)
        return lookup[values - low]
    return np.searchsorted(ids, values)


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


def _items_queryset(filters: StatsFilters) -> QuerySet:
    lookups = {
        "run": "output__run_id",
        "model": "output__endpoint_id",
        "axis": "output__prompt__group__axis_id",
        "group": "output__prompt__group_id",
        "template": "output__prompt__template_id",
    }
    narrowing = {
        path: getattr(filters, name) for name, path in lookups.items() if getattr(filters, name) is not None
    }
    return CampaignItem.objects.filter(campaign_id=filters.campaign, **narrowing)


def campaign_arrays(*, filters: StatsFilters) -> CampaignArrays:
    """Load the filtered campaign's items and labels as arrays (see CampaignArrays)."""
    campaign = campaign_get_for_stats(campaign_id=filters.campaign)
    categories = tuple(
        Category(c.pk, c.key, c.name, c.counts_as_refusal)
        for c in campaign.scheme.categories.order_by("order")
    )
    items_qs = _items_queryset(filters)
    missing = Value(NO_LABEL)
    items = _fetch_int_columns(
        items_qs.order_by().values_list(
            "id",
            "output__endpoint_id",
            "output__prompt_id",
            Coalesce("final_category_id", missing),
            Coalesce("adjudication__category_id", missing),
            Coalesce("gold_category_id", missing),
        ),
        6,
    )
    labels = _fetch_int_columns(
        Label.objects.filter(item__in=items_qs.values("id"))
        .order_by()
        .values_list("item_id", Cast("annotator_id", BigIntegerField()), "category_id"),
        3,
    )
    order = np.argsort(items[:, 0], kind="stable")
    items = items[order]
    category_ids = np.array([c.id for c in categories], dtype=np.int64)

    def code(ids: np.ndarray) -> np.ndarray:
        known = ids >= 0
        out = np.full(ids.shape, NO_LABEL, dtype=np.int64)
        out[known] = _index_of(category_ids, ids[known]) if category_ids.size else NO_LABEL
        return out

    k = len(categories)
    n_items = items.shape[0]
    label_item = _index_of(items[:, 0], labels[:, 0])
    label_code = code(labels[:, 2])
    annotator_ids, label_annotator = np.unique(labels[:, 1], return_inverse=True)
    counts = np.bincount(label_item * k + label_code, minlength=n_items * k).reshape(n_items, k)

    stored_final = code(items[:, 3])
    adjudicated = code(items[:, 4])
    rule = _FINAL_RULES.get(campaign.final_rule, "unanimous")
    resolved = resolve_final_labels(counts, adjudicated, rule=rule)
    # an item becomes final from its labels only once it has all the labels it needs
    resolved = np.where(
        (counts.sum(1) >= campaign.labels_per_output) | (adjudicated >= 0), resolved, NO_LABEL
    )
    final = np.where(stored_final >= 0, stored_final, resolved)

    model_ids, item_model = np.unique(items[:, 1], return_inverse=True)
    model_names = dict(ModelEndpoint.objects.filter(pk__in=model_ids.tolist()).values_list("pk", "name"))
    prompt_ids, item_prompt = np.unique(items[:, 2], return_inverse=True)
    prompts = (
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
        )
    )
    prompt_rows = {row[0]: row for row in prompts}
    template_map, group_map, member_map = {}, {}, {}
    for row in sorted(prompt_rows.values(), key=lambda r: (r[2] or "", r[4] or "", r[7] or "")):
        if row[1] is not None:
            template_map.setdefault(row[1], row[2])
        if row[3] is not None:
            group_map.setdefault(row[3], (row[4], row[5]))
    template_ids = list(template_map)
    group_ids = sorted(group_map, key=lambda g: (not group_map[g][1], group_map[g][0]))
    group_index = {g: i for i, g in enumerate(group_ids)}
    for row in sorted(prompt_rows.values(), key=lambda r: r[7] or ""):
        if row[6] is not None:
            member_map.setdefault(row[6], Member(row[6], row[7], group_index.get(row[8], -1)))
    member_ids = list(member_map)
    template_index = {t: i for i, t in enumerate(template_ids)}
    member_index = {m: i for i, m in enumerate(member_ids)}

    def per_prompt(column: int, index: dict) -> np.ndarray:
        table = np.array([index.get(prompt_rows[p][column], -1) for p in prompt_ids.tolist()], dtype=np.int64)
        return table[item_prompt] if n_items else np.zeros(0, dtype=np.int64)

    users = dict(get_user_model().objects.filter(pk__in=annotator_ids.tolist()).values_list("pk", "username"))
    return CampaignArrays(
        campaign=campaign,
        filters=filters,
        rule=rule,
        categories=categories,
        models=tuple(model_names.get(m, f"model {m}") for m in model_ids.tolist()),
        groups=tuple(group_map[g][0] for g in group_ids),
        group_is_control=tuple(group_map[g][1] for g in group_ids),
        templates=tuple(template_map[t] for t in template_ids),
        members=tuple(member_map[m] for m in member_ids),
        annotators=tuple(users.get(a, f"user {a}") for a in annotator_ids.tolist()),
        item_model=item_model.astype(np.int64),
        item_group=per_prompt(3, group_index),
        item_template=per_prompt(1, template_index),
        item_member=per_prompt(6, member_index),
        counts=counts,
        final=final,
        gold=code(items[:, 5]),
        adjudicated=adjudicated,
        label_item=label_item,
        label_annotator=label_annotator.astype(np.int64),
        label_code=label_code,
        final_from_items=int((stored_final >= 0).sum()),
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
