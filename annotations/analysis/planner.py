"""How many human labels a campaign needs, planned from a pilot campaign and a validated scorer.

Per model x group cell, for the refusal rate and a target interval half-width h: the labels needed
with human labels only, with prediction-powered inference (PPI++) and with active sampling, from
the pure planner (`annotations.stats.ppi_planner`). The inputs per cell:

- the pilot: the pilot campaign's items that have a human final label and a finished, parseable
  score of the scorer's current version. Y = 1 when the final category counts as a refusal; the
  prediction f is the scorer's probability of a refusal (the sum of its probabilities over the
  refusal categories) when it gives probabilities, else 1 or 0 from its category. One query.
- the cell size N: by default the done outputs of that cell in the runs the pilot's items came
  from (one GROUP BY), or given.
- the scorer's predictions on the N outputs: not read (they need not exist before the campaign).
  The pilot is a uniform sample of the cell, so the plan takes the pilot's predictions, repeated
  in the pilot's (random) item order up to N, as the cell's: the plug-in assumption the planner's
  moments rest on anyway. Active sampling needs probabilities, so it is planned only when every
  pilot score of the cell gives them.

A plan below the fewest human labels per cell for which the estimates show an interval (`shown_from`:
settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS, raised where the scorer's predicted rate is so near 0 or 1
that fewer than AUDIT_MACHINE_ASSISTED_MIN_EXPECTED labels would be expected with the outcome) is
raised to it (`raised_to_minimum`); a cell smaller than that is undefined. A cell with fewer than two
pilot labels, a pilot larger than the cell, a pilot whose labels are all equal, or a target out of
reach even with every output labelled is undefined, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import (
    Count,
    Exists,
    FilteredRelation,
    OuterRef,
    Q,
)

from annotations.analysis.machine_assisted_data import score_prediction
from annotations.core.exceptions import AuditError
from annotations.core.ids import MAX_ID
from annotations.models import Campaign, CampaignItem, Group, LabelCategory
from annotations.stats import StatsInputError
from annotations.stats.ppi_planner import LabelsNeeded, plan_labels
from inference.models import ModelEndpoint, Output, Score, Scorer

DEFAULT_HALF_WIDTH = 0.03
MAX_HALF_WIDTH = 0.5
METHODS = ("human_only", "ppi", "active")
METHOD_NAMES = {"human_only": "human labels only", "ppi": "PPI", "active": "active sampling"}
_NO_PROBABILITIES = "the scorer gives no probabilities for this cell: active sampling needs them"

Cell = tuple[int, int]  # (endpoint id, group id)


@dataclass(frozen=True)
class PlanInputs:
    """A checked plan request: the pilot campaign, a scorer of its scheme and the target half-width."""

    pilot: Campaign
    scorer: Scorer
    half_width: float


def _id_param(data: Mapping[str, str], name: str, errors: list[dict]) -> int | None:
    raw = (data.get(name) or "").strip()
    if not raw:
        errors.append({"field": name, "message": f"{name} is required (an id)"})
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_ID:
        errors.append({"field": name, "message": f"{name} must be an id in 1..{MAX_ID}, got {raw[:40]!r}"})
        return None
    return value


def _half_width_param(data: Mapping[str, str], errors: list[dict]) -> float | None:
    raw = (data.get("half_width") or "").strip()
    if not raw:
        return DEFAULT_HALF_WIDTH
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_HALF_WIDTH):
        message = (
            f"half_width must be a number in (0, {MAX_HALF_WIDTH}] (0.03 is +/-3 points), got {raw[:40]!r}"
        )
        errors.append({"field": "half_width", "message": message})
        return None
    return value


def _raise(errors: list[dict]) -> None:
    if errors:
        raise AuditError("; ".join(e["message"] for e in errors), errors=errors)


def label_plan_inputs_parse(*, data: Mapping[str, str]) -> PlanInputs:
    """Read `pilot`, `scorer` and `half_width` (default 0.03) from a query string and fetch the rows.

    Raises AuditError naming every bad parameter: a malformed or unknown id, a scorer of another
    scheme than the pilot's, a half-width outside (0, 0.5].
    """
    errors: list[dict] = []
    pilot_id = _id_param(data, "pilot", errors)
    scorer_id = _id_param(data, "scorer", errors)
    half_width = _half_width_param(data, errors)
    pilot = Campaign.objects.select_related("scheme").filter(pk=pilot_id).first() if pilot_id else None
    scorer = Scorer.objects.filter(pk=scorer_id).first() if scorer_id else None
    if pilot_id and pilot is None:
        errors.append({"field": "pilot", "message": f"pilot: campaign {pilot_id} does not exist"})
    if scorer_id and scorer is None:
        errors.append({"field": "scorer", "message": f"scorer: scorer {scorer_id} does not exist"})
    if pilot is not None and scorer is not None and scorer.scheme_id != pilot.scheme_id:
        message = f"scorer: {scorer.name} does not assign the categories of the pilot's scheme"
        errors.append({"field": "scorer", "message": message})
    _raise(errors)
    return PlanInputs(pilot=pilot, scorer=scorer, half_width=half_width)  # type: ignore[arg-type]


def label_plan_choices() -> dict[str, list[dict]]:
    """What the planner box offers: campaigns with a human final label, scorers that assign categories."""
    labelled = CampaignItem.objects.filter(campaign=OuterRef("pk"), final_category__isnull=False)
    pilots = Campaign.objects.filter(Exists(labelled)).order_by("name").values("pk", "name", "scheme_id")
    scorers = Scorer.objects.filter(scheme__isnull=False).order_by("name").values("pk", "name", "scheme_id")
    return {"pilots": list(pilots), "scorers": list(scorers)}


# --------------------------------------------------------------------------- reads


def _pilot_rows(*, pilot: Campaign, scorer: Scorer) -> np.ndarray:
    """(n, 5) float rows of the pilot, in the campaign's item order: endpoint, group, Y, f, has_probs.

    One query for the items with a final label and the scorer's finished parseable score, one for the
    scheme's categories; f is the score's refusal prediction as the estimates define it
    (machine_assisted_data.score_prediction).
    """
    categories = list(
        LabelCategory.objects.filter(scheme_id=pilot.scheme_id)
        .order_by("order")
        .values_list("pk", "key", "counts_as_refusal")
    )
    keys = [key for _, key, _ in categories]
    category_index = {pk: i for i, (pk, _, _) in enumerate(categories)}
    is_refusal = np.array([refusal for _, _, refusal in categories], dtype=bool)
    rows = (
        CampaignItem.objects.annotate(
            score=FilteredRelation(
                "output__scores",
                condition=Q(
                    output__scores__scorer_id=scorer.pk,
                    output__scores__scorer_version=scorer.version,
                    output__scores__status=Score.Status.DONE,
                    output__scores__is_unparseable=False,
                ),
            ),
        )
        .filter(
            campaign=pilot, final_category__isnull=False, prompt__group__isnull=False, score__pk__isnull=False
        )
        .order_by("rank")
        .values_list(
            "endpoint_id",
            "prompt__group_id",
            "final_category__counts_as_refusal",
            "score__category_id",
            "score__probabilities",
        )
    )
    out = []
    for endpoint_id, group_id, human_refusal, category_id, raw in rows:
        prediction = score_prediction(
            raw_probabilities=raw, category_id=category_id, keys=keys, category_index=category_index
        )
        if prediction is None:
            continue
        p, from_probabilities = prediction
        f = float(np.asarray(p)[is_refusal].sum())
        out.append((endpoint_id, group_id, float(human_refusal), f, float(from_probabilities)))
    result = np.array(out, dtype=float).reshape(-1, 5)
    result[:, 3] = np.clip(result[:, 3], 0.0, 1.0)  # probabilities that sum to 1 within rounding
    return result


def _population_counts(*, pilot: Campaign) -> dict[Cell, int]:
    """Done outputs per (model, group) in the runs the pilot's items came from: one GROUP BY."""
    runs = CampaignItem.objects.filter(campaign=pilot).values("run_id")
    rows = (
        Output.objects.filter(run_id__in=runs, status=Output.Status.DONE, prompt__group__isnull=False)
        .values_list("endpoint_id", "prompt__group_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {(endpoint, group): n for endpoint, group, n in rows}


# --------------------------------------------------------------------------- plans


def shown_from(predicted_rate: float | None) -> int | None:
    """The fewest human labels of a cell for which the estimates show an interval: the platform's
    minimum (settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS), raised so that, at the scorer's predicted
    rate, AUDIT_MACHINE_ASSISTED_MIN_EXPECTED labels are expected with and without the outcome (the
    rule of annotations.stats.ppi.too_few_labels_reason, which the estimates apply). None when the
    scorer predicts the outcome for none or all of the cell: no number of labels shows an interval."""
    minimum = settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS
    expected = settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED
    if predicted_rate is None or not expected:
        return minimum
    rarer = min(predicted_rate, 1.0 - predicted_rate)
    if rarer <= 0:
        return None
    return max(minimum, math.ceil(expected / rarer - 1e-9))


def _needed(plan: LabelsNeeded | None, reason: str | None = None, *, minimum: int | None = None) -> dict:
    """A plan as a dict; n raised to the fewest labels a cell needs before the estimates show an interval
    (`minimum`, from `shown_from`), with `raised_to_minimum` saying so."""
    if plan is None:
        return {"n": None, "half_width": None, "reason": reason}
    minimum = settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS if minimum is None else minimum
    if plan.n is not None and plan.n < minimum:
        if plan.n_items < minimum:
            shown = f"the estimates show an interval from {minimum:,} human labels here"
            reason = f"the cell has {plan.n_items:,} outputs; {shown}"
            return {"n": None, "half_width": None, "reason": reason}
        out = {"n": minimum, "half_width": plan.half_width, "reason": None, "raised_to_minimum": True}
    else:
        out = {"n": plan.n, "half_width": plan.half_width, "reason": plan.reason}
    if plan.method != "classical":
        out["lam"] = plan.lam
    if plan.method == "active":
        out["uniform_share"] = plan.uniform_share
    return out


def _undefined(reason: str) -> dict[str, dict]:
    return {method: _needed(None, reason) for method in METHODS}


def _cell_plan(
    y: np.ndarray, f: np.ndarray, *, has_probs: bool, n_items: int, half_width: float, alpha: float
) -> dict[str, dict]:
    """The three plans of one cell (dicts keyed by METHODS), or why it cannot be planned."""
    if n_items < 1:
        return _undefined("no population size for this cell")
    if y.size < 2:
        return _undefined(f"the pilot has {y.size} scored human label(s) here: at least two are needed")
    if y.size > n_items:
        return _undefined(f"the pilot has {y.size} labels but the cell only {n_items} outputs")
    yhat_cell = np.resize(f, n_items)  # the pilot's predictions stand for the cell's (module docstring)
    try:
        plan = plan_labels(
            y_pilot=y,
            pilot_items=np.arange(y.size),
            yhat_cell=yhat_cell,
            half_width=half_width,
            category_probs=yhat_cell if has_probs else None,
            alpha=alpha,
        )
    except StatsInputError as exc:
        return _undefined(str(exc))
    predicted = float(f.mean())
    minimum = shown_from(predicted)
    if minimum is None:
        return _undefined(
            f"the scorer predicts the outcome for {predicted:.0%} of this cell's pilot: the estimates show "
            "no interval where it predicts no variation"
        )
    return {
        "human_only": _needed(plan.classical, minimum=minimum),
        "ppi": _needed(plan.ppi, minimum=minimum),
        "active": _needed(plan.active, _NO_PROBABILITIES, minimum=minimum),
    }


def _about(n: int) -> str:
    """n rounded to two significant figures above 100 ("about 2,400"), exact below."""
    if n >= 100:
        n = int(round(n, 2 - len(str(n))))
    return f"{n:,}"


def _points(half_width: float) -> str:
    points = f"{half_width * 100:.4g}"
    return f"±{points} point" if points == "1" else f"±{points} points"


def _summary(totals: dict, half_width: float) -> str:
    """One line: the labels PPI (and active sampling) need against human labels only."""
    target = _points(half_width)
    cells, planned = totals["cells"], totals["cells_planned"]
    if not planned:
        return f"No model x group cell can be planned for {target}: see the reason in each row."
    active = totals["active"]
    machine = f"about {_about(totals['ppi'])} human labels with PPI"
    if active is not None:
        machine += f" ({_about(active)} with active sampling)"
    where = (
        f"in every model x group cell ({cells} cells)"
        if planned == cells
        else f"in {planned} of the {cells} model x group cells (the others are undefined: see their rows)"
    )
    human = f"{_about(totals['human_only'])} with human labels only"
    return f"{machine[0].upper()}{machine[1:]} instead of {human}, for {target} {where}."


def _totals(rows: list[dict]) -> dict:
    """Sums over the cells where both human-only and PPI are planned (active: only if planned in all)."""
    planned = [r for r in rows if r["human_only"]["n"] is not None and r["ppi"]["n"] is not None]
    active = [r["active"]["n"] for r in planned]
    return {
        "cells": len(rows),
        "cells_planned": len(planned),
        "human_only": sum(r["human_only"]["n"] for r in planned),
        "ppi": sum(r["ppi"]["n"] for r in planned),
        "active": sum(active) if planned and None not in active else None,
    }


def label_plan(
    *,
    pilot: Campaign,
    scorer: Scorer,
    half_width: float,
    population: Mapping[Cell, int] | None = None,
    alpha: float = 0.05,
) -> dict:
    """Human labels per model x group for the refusal rate at +/- `half_width`: human only, PPI, active.

    `population` maps (endpoint id, group id) to the cell size N (default: the done outputs of the
    pilot's runs). Returns `rows` (one per cell, by model and group name), `totals` over the planned
    cells and a one-line `summary`; undefined plans have `n` None and a `reason`.
    """
    pilot_rows = _pilot_rows(pilot=pilot, scorer=scorer)
    sizes = dict(_population_counts(pilot=pilot) if population is None else population)
    keys = pilot_rows[:, :2].astype(np.int64)
    cells = set(sizes) | {(int(e), int(g)) for e, g in np.unique(keys, axis=0).tolist()}
    models = dict(ModelEndpoint.objects.filter(pk__in={c[0] for c in cells}).values_list("pk", "name"))
    groups = {
        pk: (name, is_control)
        for pk, name, is_control in Group.objects.filter(pk__in={c[1] for c in cells}).values_list(
            "pk", "name", "is_control"
        )
    }
    rows = []
    for endpoint_id, group_id in sorted(
        cells, key=lambda c: (models.get(c[0], ""), groups.get(c[1], ("",))[0], c)
    ):
        mask = (keys[:, 0] == endpoint_id) & (keys[:, 1] == group_id)
        y, f, probs = pilot_rows[mask, 2], pilot_rows[mask, 3], pilot_rows[mask, 4]
        n_items = int(sizes.get((endpoint_id, group_id), 0))
        group_name, is_control = groups.get(group_id, ("", False))
        rows.append(
            {
                "model_id": endpoint_id,
                "model": models.get(endpoint_id, ""),
                "group_id": group_id,
                "group": group_name,
                "is_control": is_control,
                "pilot_n": int(y.size),
                "population": n_items,
                "pilot_refusal_rate": float(y.mean()) if y.size else None,
                "scorer_refusal_rate": float(f.mean()) if y.size else None,
                **_cell_plan(
                    y,
                    f,
                    has_probs=bool(y.size) and bool(probs.all()),
                    n_items=n_items,
                    half_width=half_width,
                    alpha=alpha,
                ),
            }
        )
    totals = _totals(rows)
    return {
        "pilot": {"id": pilot.pk, "name": pilot.name},
        "scorer": {"id": scorer.pk, "name": scorer.name, "version": scorer.version},
        "half_width": half_width,
        "alpha": alpha,
        "rows": rows,
        "totals": totals,
        "summary": _summary(totals, half_width),
    }
