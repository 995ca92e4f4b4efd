"""The campaign builder's reads: what a selection picks before the campaign exists, and gold candidates.

The count goes through `campaign_population`, the queryset `campaign_create` draws from, so its total is
the population creation starts from (every item under sampling plan "all", before gold outside it).
"""

from collections.abc import Mapping
from dataclasses import dataclass

from django.db.models import Count, Q
from django.http import QueryDict

from annotations.core.exceptions import AuditError
from annotations.core.ids import MAX_ID
from annotations.labelling.campaigns import SELECTION_KEYS, campaign_population
from annotations.models import Group, LabelCategory
from inference.models import ModelEndpoint, Output

SEARCH_LIMIT_DEFAULT = 20
SEARCH_LIMIT_MAX = 50
SEARCH_QUERY_MAX = 200
MAX_IDS_PER_LIST = 1000
UNEQUAL_RATIO = 2.0  # warn when the largest model x group cell has more than this times the smallest
EXCERPT_CHARS = 320
NO_GROUP = "(no group)"


@dataclass(frozen=True)
class GoldSearch:
    """A gold-candidate search: the runs searched, the text sought (may be empty) and how many rows."""

    runs: list[int]
    query: str
    limit: int


def _raise(errors: list[dict]) -> None:
    if errors:
        raise AuditError("; ".join(e["message"] for e in errors), errors=errors)


def _id_list(data: QueryDict, key: str, errors: list[dict]) -> list[int]:
    raw_values = [part for raw in data.getlist(key) for part in raw.split(",") if part.strip()]
    ids = []
    for raw in raw_values:
        text = raw.strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
            errors.append({"field": key, "message": f"{key} must be ids in 1..{MAX_ID}, got {text[:40]!r}"})
            return []
        ids.append(int(text))
    if len(ids) > MAX_IDS_PER_LIST:
        errors.append({"field": key, "message": f"{key}: at most {MAX_IDS_PER_LIST} ids"})
        return []
    return sorted(set(ids))


def campaign_selection_parse(*, data: QueryDict) -> dict[str, list[int]]:
    """The `runs`, `models`, `groups` and `templates` ids of a query string (repeated or comma-separated).

    Raises AuditError naming every malformed list; the lists left empty are left out.
    """
    errors: list[dict] = []
    selection = {key: _id_list(data, key, errors) for key in SELECTION_KEYS}
    _raise(errors)
    return {key: ids for key, ids in selection.items() if ids}


def _group_label(axis_key: str | None, name: str | None) -> str:
    # The same wording as Group.__str__, which labels the form's checkboxes.
    return f"{axis_key}/{name}" if name is not None else NO_GROUP


def selection_warnings(
    *,
    cells: Mapping[tuple[int, int | None], int],
    models: Mapping[int, str],
    groups: Mapping[int | None, str],
) -> list[dict]:
    """Warnings about a model x group table: groups without outputs for some model, very unequal cells.

    `cells` maps (model id, group id) to a count; `models` and `groups` name every model and group that
    should appear (the selected ones, or those found). A group with no output for a model is "missing";
    the cells are "unequal" when the largest non-empty one exceeds `UNEQUAL_RATIO` times the smallest.
    """
    warnings = []
    for group_id, group in groups.items():
        missing = [name for model_id, name in models.items() if not cells.get((model_id, group_id))]
        if not missing:
            continue
        if len(missing) == len(models):
            message = f"Group {group} has no outputs in this selection."
        else:
            message = f"Group {group} has no outputs for {', '.join(missing)}."
        warnings.append({"kind": "missing", "group": group, "models": missing, "message": message})
    filled = sorted(
        (n, models.get(m, str(m)), groups.get(g, NO_GROUP)) for (m, g), n in cells.items() if n > 0
    )
    if len(filled) >= 2 and filled[-1][0] > UNEQUAL_RATIO * filled[0][0]:
        (small, small_model, small_group), (large, large_model, large_group) = filled[0], filled[-1]
        warnings.append(
            {
                "kind": "unequal",
                "largest": {"model": large_model, "group": large_group, "n": large},
                "smallest": {"model": small_model, "group": small_group, "n": small},
                "message": f"Cells are very unequal: {large_model} x {large_group} has {large:,} outputs, "
                f"{small_model} x {small_group} {small:,} ({large / small:.1f} times as many).",
            }
        )
    return warnings


def campaign_selection_count(*, selection: dict[str, list[int]]) -> dict:
    """The outputs `selection` picks (as `campaign_create` would), per model x group, with warnings.

    One aggregate query counts the cells; the names of selected models or groups that have no output
    cost one small query each. Raises AuditError when the selection chooses nothing.
    """
    queryset = (
        campaign_population(selection=selection)
        .order_by()
        .values(
            "endpoint_id",
            "endpoint__name",
            "prompt__group_id",
            "prompt__group__name",
            "prompt__group__axis__key",
        )
        .annotate(n=Count("id"))
    )
    cells: dict[tuple[int, int | None], int] = {}
    models: dict[int, str] = {}
    groups: dict[int | None, str] = {}
    for row in queryset:
        cells[(row["endpoint_id"], row["prompt__group_id"])] = row["n"]
        models[row["endpoint_id"]] = row["endpoint__name"]
        groups[row["prompt__group_id"]] = _group_label(
            row["prompt__group__axis__key"], row["prompt__group__name"]
        )
    absent_models = set(selection.get("models", [])) - set(models)
    if absent_models:
        models.update(ModelEndpoint.objects.filter(pk__in=absent_models).values_list("pk", "name"))
    absent_groups = set(selection.get("groups", [])) - set(groups)
    if absent_groups:
        for pk, axis_key, name in Group.objects.filter(pk__in=absent_groups).values_list(
            "pk", "axis__key", "name"
        ):
            groups[pk] = _group_label(axis_key, name)
    models = dict(sorted(models.items(), key=lambda item: (item[1], item[0])))
    groups = dict(sorted(groups.items(), key=lambda item: (item[0] is None, item[1])))
    return {
        "total": sum(cells.values()),
        "models": [
            {"id": pk, "name": name, "total": sum(n for (m, _), n in cells.items() if m == pk)}
            for pk, name in models.items()
        ],
        "groups": [
            {"id": pk, "name": name, "total": sum(n for (_, g), n in cells.items() if g == pk)}
            for pk, name in groups.items()
        ],
        "cells": [{"model": m, "group": g, "n": n} for (m, g), n in sorted(cells.items(), key=str)],
        "warnings": selection_warnings(cells=cells, models=models, groups=groups),
    }


def campaign_gold_search_parse(*, data: QueryDict) -> GoldSearch:
    """Read `runs` (required), `q` (text, optional) and `limit` (1..50, default 20); AuditError naming each
    bad parameter."""
    errors: list[dict] = []
    runs = _id_list(data, "runs", errors)
    if not runs and not errors:
        errors.append({"field": "runs", "message": "runs: choose at least one run to search its outputs"})
    query = (data.get("q") or "").strip()
    if "\x00" in query:
        errors.append({"field": "q", "message": "q must not contain NUL characters"})
    elif len(query) > SEARCH_QUERY_MAX:
        errors.append({"field": "q", "message": f"q: at most {SEARCH_QUERY_MAX} characters"})
    raw_limit = (data.get("limit") or "").strip()
    limit = SEARCH_LIMIT_DEFAULT
    if raw_limit:
        if raw_limit.isdigit() and 1 <= int(raw_limit) <= SEARCH_LIMIT_MAX:
            limit = int(raw_limit)
        else:
            message = f"limit must be a whole number in 1..{SEARCH_LIMIT_MAX}, got {raw_limit[:40]!r}"
            errors.append({"field": "limit", "message": message})
    _raise(errors)
    return GoldSearch(runs=runs, query=query, limit=limit)


def _excerpt(text: str, query: str) -> tuple[str, bool]:
    """About `EXCERPT_CHARS` of `text` around the first match of `query` (the start when none), and
    whether anything was cut."""
    if len(text) <= EXCERPT_CHARS:
        return text, False
    at = text.lower().find(query.lower()) if query else -1
    start = max(0, min(at - EXCERPT_CHARS // 3, len(text) - EXCERPT_CHARS)) if at > 0 else 0
    return text[start : start + EXCERPT_CHARS], True


def campaign_gold_candidates(*, search: GoldSearch) -> list[dict]:
    """Finished outputs of `search.runs` whose text or prompt contains `search.query` (or whose id it is),
    oldest first, at most `search.limit`, each with an excerpt of its text, its prompt, model and group."""
    outputs = Output.objects.filter(status=Output.Status.DONE, run_id__in=search.runs)
    if search.query:
        matches = Q(text__icontains=search.query) | Q(prompt__text__icontains=search.query)
        if search.query.isdigit() and 1 <= int(search.query) <= MAX_ID:
            matches |= Q(pk=int(search.query))
        outputs = outputs.filter(matches)
    rows = outputs.select_related("endpoint", "prompt__group__axis").order_by("pk")[: search.limit]
    results = []
    for output in rows:
        text, is_excerpt = _excerpt(output.text, search.query)
        group = output.prompt.group
        results.append(
            {
                "id": output.pk,
                "run": output.run_id,
                "model": output.endpoint.name,
                "group": _group_label(group.axis.key, group.name) if group else NO_GROUP,
                "prompt": output.prompt.text,
                "text": text,
                "is_excerpt": is_excerpt,
            }
        )
    return results


def label_scheme_categories() -> dict[int, list[dict]]:
    """Every label scheme's categories in their order, by scheme id: what the gold picker offers."""
    schemes: dict[int, list[dict]] = {}
    for scheme_id, key, name in LabelCategory.objects.order_by("scheme_id", "order").values_list(
        "scheme_id", "key", "name"
    ):
        schemes.setdefault(scheme_id, []).append({"key": key, "name": name})
    return schemes
