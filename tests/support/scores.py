"""Scorers and scores written straight to the database, for tests that read scores (no score run is run)."""

import itertools

from annotations.models import LabelScheme
from inference.models import Output, Score, Scorer, ScoreRun

_seq = itertools.count(1)


def scorer(scheme: LabelScheme | None, *, kind: str = Scorer.Kind.IMPORTED, version: str = "v1", **fields):
    """A scorer of `scheme` at `version` (active unless is_active=False is given)."""
    name = fields.pop("name", f"scorer-{next(_seq)}")
    return Scorer.objects.create(name=name, kind=kind, scheme=scheme, version=version, **fields)


def score(
    scorer: Scorer, output: Output, *, version: str | None = None, category_key=None, **fields
) -> Score:
    """A score of `output` by `scorer` (its current version unless given), DONE unless a status is given."""
    version = version or scorer.version
    run = ScoreRun.objects.create(
        name=f"run-{next(_seq)}", scorer=scorer, scorer_version=version, status=ScoreRun.Status.COMPLETED
    )
    category = scorer.scheme.categories.get(key=category_key) if category_key else None
    fields.setdefault("status", Score.Status.DONE)
    return Score.objects.create(
        run=run, scorer=scorer, scorer_version=version, output=output, category=category, **fields
    )
