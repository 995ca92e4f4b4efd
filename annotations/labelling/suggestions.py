"""Scorer suggestions on the labelling page: which score an annotator is shown, and which scorers qualify.

Annotators are blind to scores. A campaign that turns `show_suggestions` on names a suggestion scorer, and
each item it hands out then carries that scorer's suggestion: the category of the DONE score of the
scorer's *current* version (`Scorer.version`, read when the item is handed out) on the item's output, with
its probability when the score has one. Scores of older versions are never shown (a changed configuration
is a different judgement, and its scores wait for a new score run), nor unparseable or flag-only ones, nor
those of a scorer deactivated after it was chosen.

The suggestion is one more column of the next-item statement (`labelling/services.py`), so showing it costs
no query; with suggestions off the statement is the one it always was.
"""

import json

from annotations.core.exceptions import AuditError
from annotations.models import LabelCategory, LabelScheme
from inference.models import Score, Scorer

# ruff: noqa: S608 (table names and statuses come from the models; values are named parameters)
_SCORE = Score._meta.db_table
_SCORER = Scorer._meta.db_table
_CATEGORY = LabelCategory._meta.db_table
_DONE = Score.Status.DONE.value
# Probabilities are a JSON object {category key: p}; anything but a number there is not shown.
_PROBABILITY = {
    "postgresql": """CASE WHEN jsonb_typeof(s.probabilities -> c.key) = 'number'
        THEN (s.probabilities ->> c.key)::float8 END""",
    "sqlite": """CASE WHEN json_type(s.probabilities, '$."' || c.key || '"') IN ('integer', 'real')
        THEN json_extract(s.probabilities, '$."' || c.key || '"') END""",
}
_ARRAY = {"postgresql": "json_build_array({})::text", "sqlite": "json_array({})"}
# The suggestion of item `ci` as one JSON text [key, name, probability], NULL without one. The scorer's
# current version is read once per statement (an init plan), so the unique (scorer, version, output) index
# finds the score with all three columns; the category must be one of the campaign's scheme. A scorer
# deactivated after it was chosen shows nothing (its judgements were withdrawn), until suggestions go off.
SUGGESTION_COLUMN = {
    vendor: f"""(SELECT {array.format("c.key, c.name, " + _PROBABILITY[vendor])}
     FROM {_SCORE} s JOIN {_CATEGORY} c ON c.id = s.category_id AND c.scheme_id = %(scheme)s
     WHERE s.scorer_id = %(scorer)s
       AND s.scorer_version = (SELECT sc.version FROM {_SCORER} sc WHERE sc.id = %(scorer)s AND sc.is_active)
       AND s.output_id = ci.output_id AND s.status = '{_DONE}' AND NOT s.is_unparseable)"""
    for vendor, array in _ARRAY.items()
}


def suggestion_from_column(value: str | None) -> dict | None:
    """The suggestion an item carries, from its SUGGESTION_COLUMN value: category key, name, probability."""
    if value is None:
        return None
    key, name, probability = json.loads(value)
    return {"category": key, "category_name": name, "probability": probability}


def _error(message: str) -> AuditError:
    return AuditError(
        f"suggestion_scorer: {message}",
        errors=[{"row": None, "field": "suggestion_scorer", "message": message}],
    )


def scorer_assigns_categories(scorer: Scorer) -> bool:
    """Whether the scorer's scores name categories: not a flag-only scorer (no scheme, or a classifier
    without flag_category/otherwise_category, which only flags)."""
    if scorer.scheme_id is None:
        return False
    return scorer.kind != Scorer.Kind.CLASSIFIER or bool((scorer.config or {}).get("flag_category"))


def suggestion_settings_check(*, scheme: LabelScheme, show_suggestions: bool, scorer: Scorer | None) -> None:
    """AuditError (field `suggestion_scorer`) unless a campaign of `scheme` may show `scorer`'s suggestions:
    suggestions on need a scorer, and a scorer must be active, assign categories and use `scheme`."""
    if scorer is None:
        if show_suggestions:
            raise _error("choose the scorer whose suggestions annotators see")
        return
    if not scorer.is_active:
        raise _error(f"scorer {scorer.name!r} is not active")
    if not scorer_assigns_categories(scorer):
        raise _error(f"scorer {scorer.name!r} only flags outputs; it assigns no categories")
    if scorer.scheme_id != scheme.pk:
        raise _error(
            f"scorer {scorer.name!r} uses the label scheme {scorer.scheme.key!r}, "
            f"the campaign uses {scheme.key!r}"
        )
