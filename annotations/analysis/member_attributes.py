"""Name attributes: refusal rate by a member attribute (gender, popularity ...) within each group.

The study found popular names refused more often than rare ones. Members carry free attributes
(GroupMember.attributes, e.g. {"gender": "woman", "popularity": "common"} in the starter pack); per
model, group, attribute and level the refusals of that group's members with the level are summed from
the per-member counts the name drill-down uses, so the tables agree with it.

The test per model and attribute asks whether the level matters within groups: the likelihood-ratio
test of refusal ~ C(group) + C(level) against refusal ~ C(group) (annotations.stats.logistic_group_test
with groups as its strata), and with exactly two levels the Cochran-Mantel-Haenszel test and the
Mantel-Haenszel odds ratio of the first level against the second, stratified by group
(annotations.stats.cmh_test). An attribute with more than MAX_LEVELS distinct values (a numeric
popularity, say) is not tabulated and its test row says so: bin it into levels first.
"""

from __future__ import annotations

import numpy as np

from annotations.analysis.report_cells import estimate_dict
from annotations.analysis.report_cells import number as _number
from annotations.analysis.report_cells import rate_cells as _rate_cells
from annotations.analysis.report_cells import table as _table
from annotations.analysis.selectors import CampaignArrays, member_attributes
from annotations.stats import cmh_test, logistic_group_test

MEMBER_ATTRIBUTE_TABLES = ("member_attributes", "attribute_tests")
MAX_LEVELS = 10
MAX_TEXT = 80  # longer attribute values are not levels (free text)


def _levels(attributes: list[dict]) -> dict[str, list[str | None]]:
    """attribute key -> each member's level (None where the member lacks it or it is not a short scalar)."""
    keys = sorted({key for attrs in attributes for key in attrs if isinstance(key, str)})
    out = {}
    for key in keys:
        levels = []
        for attrs in attributes:
            value = attrs.get(key)
            if isinstance(value, bool):
                value = "yes" if value else "no"
            if isinstance(value, (str, int, float)) and len(str(value)) <= MAX_TEXT:
                levels.append(str(value))
            else:
                levels.append(None)
        out[key] = levels
    return out


def member_attribute_tables(data: CampaignArrays, mmk: np.ndarray) -> dict[str, dict]:
    """The two tables (module docstring) from the (models x members x categories) counts."""
    attributes = member_attributes(member_ids=[m.id for m in data.members])
    levels_by_key = _levels([attributes.get(m.id, {}) for m in data.members])
    member_group = np.array([m.group for m in data.members], dtype=np.int64)
    x_member = mmk[:, :, data.refusal_codes].sum(2) if mmk.size else np.zeros(mmk.shape[:2], dtype=np.int64)
    n_member = mmk.sum(2)
    rate_rows, test_rows = [], []
    for key, member_levels in levels_by_key.items():
        values = sorted({v for v in member_levels if v is not None})
        if len(values) > MAX_LEVELS:
            for model in data.models:
                test_rows.append(
                    _no_test(model, key, len(values), f"{len(values)} distinct values: bin them")
                )
            continue
        level = np.array([values.index(v) if v is not None else -1 for v in member_levels], dtype=np.int64)
        has = (level >= 0) & (member_group >= 0)
        for m, model in enumerate(data.models):
            # (groups, levels) refusals and outputs of this model
            x = np.zeros((len(data.groups), len(values)), dtype=np.int64)
            n = np.zeros_like(x)
            members = np.zeros_like(x)
            np.add.at(x, (member_group[has], level[has]), x_member[m, has])
            np.add.at(n, (member_group[has], level[has]), n_member[m, has])
            np.add.at(members, (member_group[has], level[has]), (n_member[m, has] > 0).astype(np.int64))
            cells = _rate_cells(x.ravel(), n.ravel())
            for g, group in enumerate(data.groups):
                for v, value in enumerate(values):
                    if n[g, v]:
                        rate_rows.append(
                            {
                                "model": model,
                                "group": group,
                                "attribute": key,
                                "level": value,
                                "members": int(members[g, v]),
                                "n": int(n[g, v]),
                                "refusals": int(x[g, v]),
                                "refusal_rate": cells[g * len(values) + v],
                            }
                        )
            test_rows.append(_test_row(model, key, values, x, n))
    return {
        "member_attributes": _table(
            "member_attributes",
            "Refusal rate by name attribute within each group (Wilson 95%)",
            [
                ("model", "Model", "text"),
                ("group", "Group", "text"),
                ("attribute", "Attribute", "text"),
                ("level", "Level", "text"),
                ("members", "Names", "int"),
                ("n", "Outputs", "int"),
                ("refusals", "Refusals", "int"),
                ("refusal_rate", "Refusal rate (Wilson 95%)", "rate"),
            ],
            rate_rows,
        ),
        "attribute_tests": _table(
            "attribute_tests",
            "Does the attribute matter within groups? Likelihood-ratio test of the level adjusted for "
            "group; with two levels the Mantel-Haenszel odds ratio (first vs second level) and CMH test",
            [
                ("model", "Model", "text"),
                ("attribute", "Attribute", "text"),
                ("levels", "Levels", "text"),
                ("statistic", "G\u00b2", "float"),
                ("dof", "df", "int"),
                ("p_value", "p", "p"),
                ("odds_ratio", "MH odds ratio, first vs second level", "estimate"),
                ("cmh_p", "CMH p", "p"),
                ("reason", "Why no test", "text"),
            ],
            test_rows,
        ),
    }


def _no_test(model: str, key: str, n_levels: int, reason: str) -> dict:
    return {
        "model": model,
        "attribute": key,
        "levels": f"{n_levels} values",
        "statistic": None,
        "dof": None,
        "p_value": None,
        "odds_ratio": None,
        "cmh_p": None,
        "reason": reason,
    }


def _test_row(model: str, key: str, values: list[str], x: np.ndarray, n: np.ndarray) -> dict:
    row = _no_test(model, key, len(values), "")
    row["levels"] = ", ".join(values)
    if len(values) < 2:
        row["reason"] = "one level only"
        return row
    # logistic_group_test(successes[strata, levels]) tests the level ("group" there) adjusted for the strata
    test = logistic_group_test(x, n)
    row.update(statistic=_number(test.statistic), dof=test.dof, p_value=_number(test.p_value))
    row["reason"] = test.reason or test.note or ""
    if len(values) == 2:
        tables = np.stack([x[:, 0], n[:, 0] - x[:, 0], x[:, 1], n[:, 1] - x[:, 1]], axis=1).reshape(-1, 2, 2)
        stratified = cmh_test(tables)
        row["odds_ratio"] = estimate_dict(stratified.odds_ratio)
        row["cmh_p"] = _number(stratified.p_value)
    return row
