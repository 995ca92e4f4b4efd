"""Benchmark: coverage and width of the machine-assisted estimates, from a fully labelled campaign.

Run: .venv/bin/python bench/bench_ppi.py [--outputs 21504] [--database audit_bench_i15] [--reuse] [--keep]
         [--draws 1000] [--accuracy 0.88] [--per-cell 100,150,200,300,400] [--seed 15] [--min-labels N]

The campaign is bench_dashboard.py's synthetic one (`build`: 32 names in 6 groups x 56 templates x 4
models; the default 21,504 outputs are the study's 1,792 prompts x 4 models x 3 samples, 840-1,008 per
model x group cell), each output labelled by 3 of 9 simulated annotators. The items the dashboard bench
leaves disputed are adjudicated here (the first label stands), so every output has a human final label:
the truth of a cell is its refusal rate over all its outputs. Then two imported scorers of known accuracy
write a finished score of every output each (COPY), a refusal probability f whose 0/1 call (f > 0.5)
agrees with the humans on refusal for `accuracy` of the outputs (0.88 by default); the rest of the
probability goes to the human's category:

- bench-calibrated: calibrated (P(Y = 1 | f) = f), f ~ expit(b_c + s Z) in cell c with E f = the
  cell's rate, drawn given the human label Y (`calibrated_probabilities`), as a good judge's
  probabilities would be;
- bench-shifted: f = expit(mu (2Y - 1) + Z), mu = Phi^-1(accuracy): the same accuracy in every cell,
  but overconfident where refusals are rare (it flags 12% of the answers of a 2% cell).

The platform path: the population and the scorer's predictions are read once by
`machine_assisted_population` (what the dashboard reads; timed), then each draw hides the labels the
plan did not draw and calls `cell_estimates`, the function the dashboard's cells come from (so the
platform's rules against too few labels apply: annotations.stats.ppi.too_few_labels_reason).
The plans are drawn by the functions the campaign form uses, with the same arguments:

- uniform: `sample_uniform` of per_cell x cells labels over the whole population; human-only and PPI++;
- active: `sample_active` on the scorer's category probabilities, expected total the same budget,
  uniform share and uncertainty rule as annotations/labelling/sampling_plans.py; the active estimator
  (and the Hajek human-only one, for reference).

Printed per budget and method over cells x draws: coverage of the 95% intervals of the refusal rate
(of the defined ones; undefined intervals are counted apart, never as hits), the worst coverage of a
cell with an interval in at least half the draws,
the mean width, the share of the uniform human-only labels the method needs for the human-only width
((width / human-only width)^2 x its labels / human-only labels, over the cells where both are defined),
and the coverage of the group-minus-control differences. Goals (issue #15): coverage >= 0.94 at every
budget; the human-only width with <= 55% of the human labels at binary accuracy about 0.88.

`--min-labels 2` lifts the platform's minimum of human labels per cell before any interval is shown
(settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS, 80), and `--min-expected 0` its rule for rare rates (at the
scorer's predicted rate, at least AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = 10 labels expected with the
outcome), to measure what each protects against.

Needs PostgreSQL at 127.0.0.1:5432 for the user postgres without a password (as bench_dashboard.py;
DATABASE_URL is not read). The database is dropped at the end unless --keep; --reuse draws again on a
kept one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _common import cpu_model
from bench_dashboard import _copy, build, load, recreate_database, setup_django
from bench_scorer_validation import SCORE_COLUMNS
from scipy.optimize import brentq
from scipy.special import expit, ndtri

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SCORERS = {  # name -> how its refusal probability relates to the human label (see the docstring)
    "bench-calibrated": "calibrated",
    "bench-shifted": "shifted",
}
NODES, WEIGHTS = np.polynomial.hermite.hermgauss(120)
METHODS = (  # (label, plan, key in cell_estimates)
    ("human-only, uniform", "uniform", "human"),
    ("PPI++, uniform", "uniform", "ppi"),
    ("human-only (Hajek), active", "active", "human"),
    ("active", "active", "active"),
)


def adjudicate_rest(campaign_id: int) -> int:
    """Give every item without a final label its first label's category (status adjudicated); how many."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "UPDATE annotations_campaignitem i SET final_category_id = f.category_id, "
            "final_source = 'adjudicated', status = 'adjudicated' "
            "FROM (SELECT DISTINCT ON (l.item_id) l.item_id, l.category_id "
            "FROM annotations_label l JOIN annotations_campaignitem c ON c.id = l.item_id "
            "WHERE c.campaign_id = %s AND c.final_category_id IS NULL ORDER BY l.item_id, l.id) f "
            "WHERE i.id = f.item_id",
            [campaign_id],
        )
        return cur.rowcount


def _expected(func, b: np.ndarray, s: float) -> np.ndarray:
    """E[func(expit(b + s Z))] for Z ~ N(0, 1), per entry of b (Gauss-Hermite quadrature)."""
    f = expit(b[:, None] + s * np.sqrt(2) * NODES[None, :])
    return (func(f) * WEIGHTS).sum(1) / np.sqrt(np.pi)


def _centre(theta: float, s: float) -> float:
    """The b with E[expit(b + s Z)] = theta."""
    return brentq(lambda b: _expected(lambda f: f, np.array([b]), s)[0] - theta, -40, 40)


def calibrated_probabilities(y: np.ndarray, cells: np.ndarray, accuracy: float, rng) -> np.ndarray:
    """A calibrated f (P(Y = 1 | f) = f) with the given binary accuracy, conditional on the labels y.

    In cell c, f ~ expit(b_c + s Z) with E f = the cell's rate (so Y ~ Bernoulli(f) reproduces it);
    one spread s for all cells, set so that E max(f, 1 - f), the accuracy of the call f > 0.5 of a
    calibrated f, averaged over outputs is `accuracy`. Given Y, f is drawn from f | Y by rejection:
    candidates from the cell's law, kept with probability f (Y = 1) or 1 - f (Y = 0)."""
    ids = np.unique(cells)
    theta = np.array([y[cells == c].mean() for c in ids])
    weight = np.array([np.mean(cells == c) for c in ids])

    def gap(s: float) -> float:
        b = np.array([_centre(t, s) for t in theta])
        return float(weight @ _expected(lambda f: np.maximum(f, 1 - f), b, s)) - accuracy

    s = brentq(gap, 0.05, 15.0)
    b = np.array([_centre(t, s) for t in theta])
    centre = b[np.searchsorted(ids, cells)]
    f = np.full(y.size, np.nan)
    todo = np.arange(y.size)
    while todo.size:
        candidate = expit(centre[todo] + s * rng.standard_normal(todo.size))
        keep = rng.random(todo.size) < np.where(y[todo] == 1, candidate, 1 - candidate)
        f[todo[keep]] = candidate[keep]
        todo = todo[~keep]
    return f


def scorer_add(campaign_id: int, name: str, accuracy: float, seed: int) -> int:
    """An imported scorer, a completed score run and a DONE score with probabilities on every output."""
    from django.db import connection

    from annotations.models import Campaign, CampaignItem
    from inference.models import Score, Scorer, ScoreRun
    from inference.services.scoring import scorer_create

    campaign = Campaign.objects.select_related("scheme").get(pk=campaign_id)
    categories = list(campaign.scheme.categories.order_by("order"))
    key_of = {c.pk: c.key for c in categories}
    is_refusal = {c.pk: c.counts_as_refusal for c in categories}
    scorer = scorer_create(name=name, kind=Scorer.Kind.IMPORTED, scheme=campaign.scheme, config={})
    run = ScoreRun.objects.create(
        name=f"{scorer.name} on bench campaign", scorer=scorer, scorer_version=scorer.version,
        scorer_config=scorer.config, campaign=campaign, status=ScoreRun.Status.COMPLETED, chunk_size=5_000,
    )  # fmt: skip
    rows = list(
        CampaignItem.objects.filter(campaign=campaign)
        .order_by("output_id")
        .values_list("output_id", "final_category_id", "endpoint_id", "prompt__group_id")
    )
    rng = np.random.default_rng(seed + 15 + len(name))
    y = np.array([is_refusal[r[1]] for r in rows], dtype=float)
    if SCORERS[name] == "calibrated":
        pairs = [(r[2], r[3]) for r in rows]
        number = {pair: i for i, pair in enumerate(sorted(set(pairs)))}
        f = calibrated_probabilities(y, np.array([number[p] for p in pairs]), accuracy, rng)
    else:
        f = expit(ndtri(accuracy) * (2 * y - 1) + rng.standard_normal(y.size))
    now, null = "2026-01-01 00:00:00+00", "\\N"
    first_id = (Score.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1

    def probabilities(final: int, refusal: float) -> str:
        refused = is_refusal[final]
        yes = key_of[final] if refused else "refusal-to-answer"
        no = "answer" if refused else key_of[final]
        return json.dumps({yes: round(refusal, 6), no: round(1 - refusal, 6)})

    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        _copy(
            cur,
            "inference_score",
            SCORE_COLUMNS,
            (
                f"{first_id + i}\t{run.pk}\t{scorer.pk}\t{scorer.version}\t{o}\tdone\t{null}"
                f"\t{probabilities(c, p)}\t{null}\t{null}\tf\t{{}}\t1\t\t{null}\t{now}\n"
                for i, ((o, c, *_), p) in enumerate(zip(rows, f.tolist(), strict=True))
            ),
        )
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('inference_score', 'id'), %s)", [first_id + len(rows) - 1]
        )
        cur.execute("VACUUM ANALYZE inference_score, annotations_campaignitem")
    agree = float(np.mean((f > 0.5) == (y == 1)))
    print(
        f"scorer {name} ({SCORERS[name]}): {len(rows):,} scores, binary accuracy on refusal {agree:.4f} "
        f"(target {accuracy}), correlation with the human label {np.corrcoef(f, y)[0, 1]:.3f}"
    )
    return scorer.pk


def population_load(campaign_id: int, scorer_id: int):
    """The platform's read of the population and predictions (timed)."""
    from django.db import connection

    from annotations.analysis.machine_assisted_data import machine_assisted_population
    from annotations.analysis.selectors import StatsFilters
    from annotations.models import Campaign

    connection.close()
    start = time.perf_counter()
    campaign = Campaign.objects.get(pk=campaign_id)
    population = machine_assisted_population(
        filters=StatsFilters(campaign=campaign_id), campaign=campaign, scorer_id=scorer_id
    )
    elapsed = time.perf_counter() - start
    print(f"machine_assisted_population: {population.model.size:,} outputs read in {elapsed:.2f} s")
    return population


class Tally:
    """Sums over draws, indexed [budget, method] (hits also by cell)."""

    def __init__(self, n_budgets: int, n_cells: int) -> None:
        shape = (n_budgets, len(METHODS))
        self.hits = np.zeros((*shape, n_cells))
        self.defined_by_cell = np.zeros((*shape, n_cells))
        self.width = np.zeros((*shape, n_cells))
        self.labels = np.zeros((*shape, n_cells))
        self.diff_hits = np.zeros(shape)
        self.diff_defined = np.zeros(shape)
        self.diffs = 0


def run_draws(population, args) -> tuple[Tally, dict]:
    """Every draw x budget x plan through sample_* and cell_estimates; the tallies."""
    from annotations.analysis.machine_assisted import cell_estimates
    from annotations.labelling.sampling_plans import DEFAULT_UNIFORM_SHARE, UNCERTAINTY_RULE
    from annotations.stats.ppi import differences_from_control
    from annotations.stats.sampling import sample_active, sample_uniform

    predictions = population.predictions[0]
    is_refusal = np.array([c[3] for c in population.categories], dtype=bool)
    y = is_refusal[population.final].astype(float)
    yhat, usable, probs = predictions.refusal, predictions.usable, predictions.category
    n_groups = len(population.groups)
    code = population.model * n_groups + population.group
    cells = sorted(set(code.tolist()))
    members = [np.flatnonzero(code == c) for c in cells]
    truth = np.array([y[m].mean() for m in members])
    control = next(i for i, (_, is_control, _) in enumerate(population.groups) if is_control)
    n = y.size
    tally = Tally(len(args.per_cell), len(cells))
    for d in range(args.draws):
        for j, per_cell in enumerate(args.per_cell):
            budget = per_cell * len(cells)
            seed = (args.seed * 100_003 + d) * 31 + j
            uniform = sample_uniform(n, n=budget, seed=seed)
            active = sample_active(
                probs, budget=budget, uniform_share=DEFAULT_UNIFORM_SHARE, rule=UNCERTAINTY_RULE, seed=seed
            )
            by_plan = {}
            for plan, draw in (("uniform", uniform), ("active", active)):
                chosen, pi = draw.selected, draw.inclusion_probabilities
                by_plan[plan] = [
                    cell_estimates(
                        plan=plan,
                        y=y[m],
                        yhat=yhat[m],
                        usable=usable[m],
                        drawn=chosen[m],
                        labelled=chosen[m],
                        pi=pi[m],
                    )
                    for m in members
                ]
            for i, (_, plan, key) in enumerate(METHODS):
                ests = [cell[key] for cell in by_plan[plan]]
                for c, est in enumerate(ests):
                    tally.labels[j, i, c] += est.n_labelled
                    if est.value is not None:
                        tally.defined_by_cell[j, i, c] += 1
                        tally.width[j, i, c] += est.ci_high - est.ci_low
                        tally.hits[j, i, c] += est.ci_low <= truth[c] <= est.ci_high
                for model in range(len(population.models)):
                    block = [c for c, cell in enumerate(cells) if cell // n_groups == model]
                    base = next(c for c in block if cells[c] % n_groups == control)
                    order = [base] + [c for c in block if c != base]
                    for diff in differences_from_control([ests[c] for c in order], control=0):
                        target = truth[order[diff.group]] - truth[base]
                        tally.diff_defined[j, i] += diff.value is not None
                        covered = diff.value is not None and diff.ci_low <= target <= diff.ci_high
                        tally.diff_hits[j, i] += covered
    return tally, {"truth": truth, "cells": len(cells)}


def print_table(tally: Tally, per_cells: list[int], draws: int, n_cells: int) -> None:
    """One row per budget x method."""
    head = (
        f"{'labels/cell':>11} {'method':>27} {'coverage':>8} {'worst cell':>10} {'mean width':>10} "
        f"{'labels for human width':>22} {'diff coverage':>13} {'undefined':>9}"
    )
    print(head)
    for j, per_cell in enumerate(per_cells):
        human_defined = tally.defined_by_cell[j, 0] > 0
        for i, (label, _, _) in enumerate(METHODS):
            defined = tally.defined_by_cell[j, i]
            total = defined.sum()
            coverage = tally.hits[j, i].sum() / total if total else float("nan")
            often = defined >= draws / 2  # cells with an interval in at least half the draws
            worst = np.min(tally.hits[j, i][often] / defined[often]) if often.any() else float("nan")
            both = human_defined & (defined > 0)
            width = tally.width[j, i].sum() / total if total else float("nan")
            share = float("nan")
            if both.any():
                w_m = tally.width[j, i][both] / defined[both]
                w_h = tally.width[j, 0][both] / tally.defined_by_cell[j, 0][both]
                n_m, n_h = tally.labels[j, i][both], tally.labels[j, 0][both]
                share = float(np.sum((w_m / w_h) ** 2 * n_m) / np.sum(n_h))
            n_diffs = tally.diff_defined[j, i]
            diff_cov = tally.diff_hits[j, i] / n_diffs if n_diffs else float("nan")
            print(
                f"{per_cell:>11} {label:>27} {coverage:>8.4f} {worst:>10.3f} {width:>10.4f} {share:>22.2f} "
                f"{diff_cov:>13.4f} {draws * n_cells - total:>9.0f}"
            )


def main() -> None:
    """Build (or reuse) the campaign, read it as the dashboard does, draw, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outputs", type=int, default=21_504)
    parser.add_argument("--database", default="audit_bench_i15")
    parser.add_argument("--reuse", action="store_true", help="Keep an existing bench database.")
    parser.add_argument("--keep", action="store_true", help="Do not drop the database at the end.")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--accuracy", type=float, default=0.88)
    parser.add_argument("--per-cell", default="100,150,200,300,400", help="Human labels per cell (budgets).")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--min-labels", type=int, default=None,
        help="Fewest labels per cell before an interval is shown (default: the platform's setting).",
    )  # fmt: skip
    parser.add_argument(
        "--min-expected", type=int, default=None,
        help="Fewest labels expected with the outcome at the scorer's rate (default: the setting).",
    )  # fmt: skip
    parser.add_argument("--scorers", default=",".join(SCORERS), help=f"Any of {', '.join(SCORERS)}.")
    args = parser.parse_args()
    args.scorers = args.scorers.split(",")
    if set(args.scorers) - set(SCORERS):
        parser.error(f"--scorers: choose among {', '.join(SCORERS)}")
    args.per_cell = [int(v) for v in args.per_cell.split(",")]

    print(
        f"machine: nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()} "
        f"numpy={np.__version__}; {load()}"
    )
    if not args.reuse:
        recreate_database(args.database)
    setup_django(args.database)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from annotations.models import Campaign
    from inference.models import Scorer

    campaign_id = Campaign.objects.filter(name="bench campaign").values_list("pk", flat=True).first()
    if campaign_id is None:
        campaign_id = build(args.outputs, args.seed)
        print(f"adjudicated here (first label stands): {adjudicate_rest(campaign_id):,} items")
    from django.conf import settings

    if args.min_labels is not None:
        settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS = args.min_labels
    if args.min_expected is not None:
        settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED = args.min_expected
    print(
        f"intervals shown from {settings.AUDIT_MACHINE_ASSISTED_MIN_LABELS} human labels per cell and "
        f"{settings.AUDIT_MACHINE_ASSISTED_MIN_EXPECTED} expected with (and without) the outcome"
    )
    for name in args.scorers:
        scorer = Scorer.objects.filter(name=name).first()
        scorer_id = scorer.pk if scorer else scorer_add(campaign_id, name, args.accuracy, args.seed)
        population = population_load(campaign_id, scorer_id)
        start = time.perf_counter()
        tally, info = run_draws(population, args)
        truth = info["truth"]
        print(
            f"\nscorer {name} ({SCORERS[name]}): {info['cells']} cells, refusal rates "
            f"{truth.min():.3f}-{truth.max():.3f}, {args.draws} draws, seed {args.seed}: "
            f"{time.perf_counter() - start:.0f} s; {load()}"
        )
        print_table(tally, args.per_cell, args.draws, info["cells"])
    connection.close()
    if not args.keep:
        recreate_database(args.database, create=False)
        print(f"database {args.database} dropped (use --keep to keep it for --reuse)")


if __name__ == "__main__":
    main()
