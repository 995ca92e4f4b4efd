"""The model-to-model comparison tables: for each pair of models in the filter, per group, how the
refusal rate and the gap to the control group moved, and whether the disparity changed (the
interaction test). The statistics are annotations/stats/model_comparison.py; the rows are read from
the (models x groups) refusal counts the disparity tables use, so the numbers agree with them.

Rates are compared as "model b - model a" for each pair (a, b) in the report's model order. The gap
of a group is its rate minus the control group's; with no control group, or several (one per axis:
filter by axis), the gap columns are undefined with that reason.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from annotations.analysis.report_cells import estimate_dict
from annotations.analysis.report_cells import number as _number
from annotations.analysis.report_cells import table as _table
from annotations.analysis.selectors import CampaignArrays
from annotations.stats import Estimate
from annotations.stats.disparity import _difference_estimate, _rate_estimate
from annotations.stats.model_comparison import gap_change, interaction_test, rate_change

MODEL_COMPARISON_TABLES = ("model_changes", "model_interaction")


def _control(data: CampaignArrays) -> tuple[int | None, str | None]:
    controls = [g for g, is_control in enumerate(data.group_is_control) if is_control]
    if not controls:
        return None, "no control group is set"
    if len(controls) > 1:
        return None, "several control groups (one per axis): filter by axis"
    return controls[0], None


def model_comparison_tables(data: CampaignArrays, mgk: np.ndarray) -> dict[str, dict]:
    """The two tables (module docstring); without two models they have no rows."""
    x = mgk[:, :, data.refusal_codes].sum(2)
    n = mgk.sum(2)
    control, no_control = _control(data)
    changes, tests = [], []
    pairs = list(combinations(range(len(data.models)), 2))
    for a, b in pairs:
        for g, group in enumerate(data.groups):
            if n[a, g] == 0 and n[b, g] == 0:
                continue
            row = {
                "model_a": data.models[a],
                "model_b": data.models[b],
                "group": group,
                "is_control": data.group_is_control[g],
                "rate_a": estimate_dict(_rate_estimate(int(x[a, g]), int(n[a, g]))),
                "rate_b": estimate_dict(_rate_estimate(int(x[b, g]), int(n[b, g]))),
                # b - a, so a drop in refusals after a model update is negative
                "change": estimate_dict(rate_change(int(x[b, g]), int(n[b, g]), int(x[a, g]), int(n[a, g]))),
            }
            if control is None:
                undefined = Estimate.undefined(no_control)
                row["gap_a"] = row["gap_b"] = row["gap_change"] = estimate_dict(undefined)
            elif g == control:
                same = Estimate.undefined("the control group itself")
                row["gap_a"] = row["gap_b"] = row["gap_change"] = estimate_dict(same)
            else:
                ga, ca, gb, cb = (
                    (int(x[m, h]), int(n[m, h])) for m, h in ((a, g), (a, control), (b, g), (b, control))
                )
                row["gap_a"] = estimate_dict(_difference_estimate(*ga, *ca))
                row["gap_b"] = estimate_dict(_difference_estimate(*gb, *cb))
                row["gap_change"] = estimate_dict(gap_change(gb, cb, ga, ca))
            changes.append(row)
        tests.append(_test_row(data.models[a], data.models[b], x[[a, b]], n[[a, b]]))
    if len(data.models) > 2:
        tests.append(_test_row("every model", "", x, n))
    return {
        "model_changes": _table(
            "model_changes",
            "Model-to-model change per group: refusal rate b - a (Newcombe 95%) and the gap to the control "
            "group (group - control; change of the gap b - a, Wald 95%)",
            [
                ("model_a", "Model a", "text"),
                ("model_b", "Model b", "text"),
                ("group", "Group", "text"),
                ("rate_a", "Refusal rate a (Wilson 95%)", "rate"),
                ("rate_b", "Refusal rate b (Wilson 95%)", "rate"),
                ("change", "Change b - a", "rate"),
                ("gap_a", "Gap to control under a", "rate"),
                ("gap_b", "Gap to control under b", "rate"),
                ("gap_change", "Change of the gap b - a", "rate"),
            ],
            changes,
        ),
        "model_interaction": _table(
            "model_interaction",
            "Did the disparity change between models? Model x group interaction on refusal "
            "(likelihood-ratio test; Breslow-Day with two models)",
            [
                ("model_a", "Model a", "text"),
                ("model_b", "Model b", "text"),
                ("statistic", "G\u00b2", "float"),
                ("dof", "df", "int"),
                ("p_value", "p", "p"),
                ("breslow_day_p", "Breslow-Day p", "p"),
                ("n", "Outputs", "int"),
                ("reason", "Why no test", "text"),
            ],
            tests,
        ),
    }


def _test_row(model_a: str, model_b: str, x: np.ndarray, n: np.ndarray) -> dict:
    test = interaction_test(x, n)
    return {
        "model_a": model_a,
        "model_b": model_b,
        "statistic": _number(test.statistic),
        "dof": test.dof,
        "p_value": _number(test.p_value),
        "breslow_day_p": _number(test.breslow_day_p),
        "n": test.n,
        "reason": test.reason or "",
    }
