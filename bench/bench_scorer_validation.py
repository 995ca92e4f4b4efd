"""Benchmark: the scorer validation tables on PostgreSQL at 1,000,000 outputs x 3 labels (goal < 1 s).

Run: .venv/bin/python bench/bench_scorer_validation.py [--outputs 1000000] [--database audit_bench_i14]
         [--reuse] [--keep] [--repeats 3] [--explain]

Builds bench_dashboard.py's synthetic campaign (`build`: 6 groups x 56 templates x 4 models, 3 labels
an output, COPY) in its own database (dropped and created: `audit_bench_i14`), then two scorers
(`scorer_create`, a score run each) and, by COPY, a finished score of every output for each:

- `bench-string-match` (string match, XSTest preset): "refusal to answer" or "answer", agreeing with
  the human final label on refusal vs not for 88% of the labelled items;
- `bench-toxigen` (classifier, a flag only, like the study's toxicity model): nothing flagged,
  flag scores between 0 and 0.05.

The scores' COPY fires the score tally's triggers (annotations/analysis/tallies.py), so the tally the
tables read on PostgreSQL is the one the triggers made. Then it times, each after a fresh database
connection, --repeats times: the counts' query (`_score_rows`, read from the tally), the same counts by
the GROUP BY over items and scores (the SQLite path; the two must give the same rows), `scorer_counts`
(the query and the binning into arrays), `scorer_tables` with 1,000 bootstrap resamples (goal < 1 s),
the same on precomputed counts (the statistics alone), and the whole
`dashboard_report(parts=("scorers",))`. It prints the headline rows (accuracy, Cohen's kappa with its
interval, the flag row of "Harmful refusal"), the tally's size, and what its triggers cost the writes:
a score run's 256-score chunk (claim and results, as chunks.rows_claim and rows_write write them) and a
change of an item's final label, with the triggers and with them disabled, in transactions rolled back.
`--explain` adds EXPLAIN ANALYZE of both forms of the counts' query (the tally read, the GROUP BY).

Needs PostgreSQL at 127.0.0.1:5432 for the user postgres without a password (as bench_dashboard.py;
DATABASE_URL is not read). The database is dropped at the end unless --keep; `--reuse` times again on a
kept one. Smallest run: `--outputs 20000` (under a minute); the 1,000,000 build takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
from _common import cpu_model
from bench_dashboard import _copy, build, load, recreate_database, setup_django

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STRING_MATCH = "bench-string-match"
FLAG = "bench-toxigen"
AGREEMENT = 0.88  # string match: share of labelled items where it agrees with the humans on refusal
SCORE_COLUMNS = [
    "id",
    "run_id",
    "scorer_id",
    "scorer_version",
    "output_id",
    "status",
    "category_id",
    "probabilities",
    "flag_score",
    "is_flagged",
    "is_unparseable",
    "raw",
    "attempts",
    "last_error",
    "latency_ms",
    "finished_at",
]


def scorers_add(campaign_id: int, seed: int) -> None:
    """The two scorers, a score run each and a DONE score of every campaign output for both (COPY)."""
    from django.db import connection

    from annotations.models import Campaign, CampaignItem
    from inference.models import ModelEndpoint, Scorer, ScoreRun
    from inference.services.scoring import scorer_create

    campaign = Campaign.objects.select_related("scheme").get(pk=campaign_id)
    scheme = campaign.scheme
    categories = {c.key: c for c in scheme.categories.all()}
    is_refusal = {c.pk: c.counts_as_refusal for c in categories.values()}
    string_match = scorer_create(
        name=STRING_MATCH,
        kind=Scorer.Kind.STRING_MATCH,
        scheme=scheme,
        config={"preset": "xstest", "refusal_category": "refusal-to-answer", "otherwise_category": "answer"},
    )
    toxigen = ModelEndpoint.objects.create(
        name="toxigen-roberta", base_urls=["http://127.0.0.1:1/v1"], served_model_name="tomh/toxigen_roberta"
    )
    flag = scorer_create(
        name=FLAG,
        kind=Scorer.Kind.CLASSIFIER,
        endpoint=toxigen,
        config={"flag_label": "LABEL_1", "labels": ["LABEL_0", "LABEL_1"]},
    )
    runs = {
        scorer.pk: ScoreRun.objects.create(
            name=f"{scorer.name} on bench campaign",
            scorer=scorer,
            scorer_version=scorer.version,
            scorer_config=scorer.config,
            campaign=campaign,
            status=ScoreRun.Status.COMPLETED,
            chunk_size=5_000,
        )
        for scorer in (string_match, flag)
    }
    items = np.array(
        list(
            CampaignItem.objects.filter(campaign=campaign)
            .order_by("output_id")
            .values_list("output_id", "final_category_id")
        ),
        dtype=object,
    )
    output_ids = items[:, 0].astype(np.int64)
    final = items[:, 1]
    n = output_ids.size
    rng = np.random.default_rng(seed + 14)
    human_refusal = np.array([f is not None and is_refusal[f] for f in final])
    labelled = np.array([f is not None for f in final])
    agrees = rng.random(n) < AGREEMENT
    # an unlabelled item (disputed, not adjudicated) gets the scorer's marginal refusal rate
    says_refusal = np.where(labelled, np.where(agrees, human_refusal, ~human_refusal), rng.random(n) < 0.2)
    refusal_id, answer_id = categories["refusal-to-answer"].pk, categories["answer"].pk
    now = "2026-01-01 00:00:00+00"
    null = "\\N"
    sm_run, flag_run = runs[string_match.pk].pk, runs[flag.pk].pk
    flag_scores = rng.uniform(0.0, 0.05, n)
    latencies = rng.uniform(20, 200, n)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        _copy(
            cur,
            "inference_score",
            SCORE_COLUMNS,
            (
                f"{i + 1}\t{sm_run}\t{string_match.pk}\t{string_match.version}\t{o}\tdone"
                f"\t{refusal_id if r else answer_id}\t{{}}\t{null}\t{null}\tf"
                + ('\t{"rule": 0, "phrase": "i\'m sorry"}' if r else '\t{"rule": null, "phrase": null}')
                + f"\t1\t\t{null}\t{now}\n"
                for i, (o, r) in enumerate(zip(output_ids.tolist(), says_refusal.tolist(), strict=True))
            ),
        )
        _copy(
            cur,
            "inference_score",
            SCORE_COLUMNS,
            (
                f"{n + i + 1}\t{flag_run}\t{flag.pk}\t{flag.version}\t{o}\tdone\t{null}"
                f'\t{{}}\t{s:.6f}\tf\tf\t{{"label": "LABEL_0", "probs": [{1 - s:.6f}, {s:.6f}]}}'
                f"\t1\t\t{ms:.1f}\t{now}\n"
                for i, (o, s, ms) in enumerate(
                    zip(output_ids.tolist(), flag_scores.tolist(), latencies.tolist(), strict=True)
                )
            ),
        )
        cur.execute("SELECT setval(pg_get_serial_sequence('inference_score', 'id'), %s)", [2 * n])
    connection.close()
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE inference_score, annotations_scoretally, annotations_campaignitem")
    print(
        f"scores: {2 * n:,} rows ({n:,} per scorer), string match agrees on refusal for "
        f"{(says_refusal == human_refusal)[labelled].mean():.1%} of {int(labelled.sum()):,} labelled items; "
        f"COPY (the score tally's triggers count them meanwhile) + VACUUM in {time.perf_counter() - t0:.1f} s"
    )


def timed(func):
    """(wall seconds, result) of one call after a fresh connection."""
    from django.db import connection

    connection.close()
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def fmt(cell: dict) -> str:
    """An estimate cell as `value [low, high]`."""
    if cell.get("value") is None:
        return f"undefined ({cell.get('reason')})"
    interval = "" if cell.get("ci_low") is None else f" [{cell['ci_low']:.4f}, {cell['ci_high']:.4f}]"
    return f"{cell['value']:.4f}{interval}"


def run_timings(campaign_id: int, repeats: int) -> None:
    """Time the SQL, the counts, the tables and the report part; print the headline rows."""
    import statsmodels.api  # noqa: F401  (a server process imports it once, not per request)

    from annotations.analysis.report import dashboard_report
    from annotations.analysis.scorer_report import _score_rows, scorer_counts, scorer_tables
    from annotations.analysis.selectors import StatsFilters

    filters = StatsFilters(campaign=campaign_id)
    scorer_tables(filters=filters, n_resamples=10)  # imports and first-call costs, as a warm worker
    sql = [timed(lambda: _score_rows(filters)) for _ in range(repeats)]
    print(
        f"SQL (_score_rows from the score tally), cold: {', '.join(f'{t:.3f}' for t, _ in sql)} s; "
        f"best {min(t for t, _ in sql):.3f}, median {statistics.median(t for t, _ in sql):.3f}; "
        f"{len(sql[-1][1]):,} rows; {load()}"
    )
    direct = [timed(lambda: _score_rows(filters, from_tallies=False)) for _ in range(repeats)]
    same = Counter(direct[-1][1]) == Counter(sql[-1][1])
    print(
        f"  the same GROUP BY over items and scores (the SQLite path): "
        f"{', '.join(f'{t:.3f}' for t, _ in direct)} s; best {min(t for t, _ in direct):.3f}; "
        f"{'the same rows' if same else 'DIFFERENT rows'}; {load()}"
    )
    counts = [timed(lambda: scorer_counts(filters=filters)) for _ in range(repeats)]
    print(
        f"scorer_counts (SQL + axes + arrays), cold: {', '.join(f'{t:.3f}' for t, _ in counts)} s; "
        f"best {min(t for t, _ in counts):.3f}; {load()}"
    )
    tables = [timed(lambda: scorer_tables(filters=filters, n_resamples=1000)) for _ in range(repeats)]
    best = min(t for t, _ in tables)
    print(
        f"scorer_tables (1,000 resamples), cold: {', '.join(f'{t:.3f}' for t, _ in tables)} s; "
        f"best {best:.3f}, median {statistics.median(t for t, _ in tables):.3f} (goal < 1 s): "
        f"{'OK' if best < 1 else 'SLOW'}; {load()}"
    )
    counted = counts[-1][1]
    with mock.patch("annotations.analysis.scorer_report.scorer_counts", return_value=counted):
        stats = [timed(lambda: scorer_tables(filters=filters, n_resamples=1000))[0] for _ in range(repeats)]
    print(
        f"  of which statistics (scorer_tables on precomputed counts): "
        f"{', '.join(f'{t:.3f}' for t in stats)} s; the rest is scorer_counts (SQL + axes + arrays)"
    )
    part = [
        timed(lambda: dashboard_report(filters=filters, n_resamples=0, parts=("scorers",)))
        for _ in range(repeats)
    ]
    print(
        f"dashboard_report(parts=('scorers',)), cold: {', '.join(f'{t:.3f}' for t, _ in part)} s; "
        f"best {min(t for t, _ in part):.3f} (includes campaign_arrays); {load()}"
    )
    result = tables[-1][1]
    for row in result["scorers"]["rows"]:
        print(
            f"  {row['scorer']} ({row['kind']}): {row['n']:,} items compared, accuracy "
            f"{fmt(row['accuracy'])}, kappa {fmt(row['kappa'])}, refusal recall {fmt(row['recall'])}, "
            f"unparseable {row['unparseable']}, unlabelled {row['unlabelled']:,}, error rate differs by "
            f"group p = {row['error_rate_differs_p']}"
        )
    for row in result["scorer_flags"]["rows"]:
        if row["human_category"] == "Harmful refusal":
            print(
                f"  {row['scorer']}: flagged {row['flagged']:,} of {row['n']:,} items humans labelled "
                f"{row['human_category']!r}: {fmt(row['flag_rate'])}"
            )
    print("  rows per table: " + ", ".join(f"{key} {len(table['rows'])}" for key, table in result.items()))


def explain(campaign_id: int) -> None:
    """EXPLAIN ANALYZE of the code's two forms of the counts' query: from the score tally (PostgreSQL) and
    the GROUP BY over items and scores (SQLite's, which PostgreSQL would run without the tally)."""
    from django.db import connection

    from annotations.analysis.scorer_report import _SCORE_ROWS_SQL, _SCORE_TALLY_SQL

    for title, sql in (
        ("the score tally read", _SCORE_TALLY_SQL),
        ("the GROUP BY over scores", _SCORE_ROWS_SQL),
    ):
        connection.close()
        with connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql.format(join_group="", where=""), [campaign_id])
            print(f"EXPLAIN ANALYZE of {title}:")
            for (line,) in cur.fetchall():
                print(f"  {line}")


def tally_size(campaign_id: int) -> None:
    """The score tally's rows (all, and above 0 for this campaign) and its size on disk."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE campaign_id = %s AND n > 0), "
            "pg_size_pretty(pg_total_relation_size('annotations_scoretally')) FROM annotations_scoretally",
            [campaign_id],
        )
        rows, live, size = cur.fetchone()
    print(f"score tally: {rows:,} rows ({live:,} of this campaign above 0), {size} with its index")


_FINAL_LOOP = """DO $$ DECLARE r record; BEGIN
FOR r IN SELECT id, final_category_id AS f FROM annotations_campaignitem
  WHERE campaign_id = {campaign} AND final_category_id IS NOT NULL ORDER BY id LIMIT {n} LOOP
  UPDATE annotations_campaignitem SET final_category_id = CASE WHEN r.f = {a} THEN {b} ELSE {a} END
    WHERE id = r.id;
  UPDATE annotations_campaignitem SET final_category_id = r.f WHERE id = r.id;
END LOOP; END $$"""


def _toggled(table: str, trigger: str | None):
    """SQL disabling `trigger` inside the (rolled back) transaction, or nothing."""
    return [f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"] if trigger else []


def write_costs(campaign_id: int, n_chunks: int = 40, n_items: int = 2000) -> None:
    """What the score tally's triggers cost the writes: a score run's 256-score chunk (the claim, then the
    results in one conditional UPDATE, as chunks.rows_claim and rows_write do) and a change of an item's
    final label, each with the triggers and with them disabled, inside transactions rolled back."""
    from django.db import connection, transaction

    from annotations.models import Campaign
    from inference.models import Score, Scorer
    from inference.services import chunks
    from inference.services.score_compute import SCORE_RESULT_FIELDS, SCORE_ROWS

    scorer = Scorer.objects.get(name=STRING_MATCH)
    run_id = scorer.runs.values_list("pk", flat=True).get()
    ids = list(
        Score.objects.filter(scorer=scorer).order_by("pk").values_list("pk", flat=True)[: 256 * n_chunks]
    )
    fields = [Score._meta.get_field(name) for name in SCORE_RESULT_FIELDS]
    results = {}
    for label, trigger in (("without", "annotations_score_tally_update"), ("with", None)):
        claims, writes = [], []
        with transaction.atomic(), connection.cursor() as cur:
            for statement in _toggled("inference_score", trigger):
                cur.execute(statement)
            for start in range(0, len(ids), 256):
                chunk = ids[start : start + 256]
                rows = [
                    Score(pk=pk, **{f.attname: v for f, v in zip(fields, values, strict=True)})
                    for pk, *values in Score.objects.filter(pk__in=chunk).values_list(
                        "pk", *SCORE_RESULT_FIELDS
                    )
                ]
                Score.objects.filter(pk__in=chunk).update(status="pending", claimed_at=None)
                t0 = time.perf_counter()
                token = chunks.rows_claim(kind=SCORE_ROWS, run_id=run_id, ids=chunk)
                t1 = time.perf_counter()
                written = chunks.rows_write(kind=SCORE_ROWS, rows=rows, token=token)
                t2 = time.perf_counter()
                assert written == len(chunk), (written, len(chunk))
                claims.append((t1 - t0) * 1000)
                writes.append((t2 - t1) * 1000)
            transaction.set_rollback(True)
        results[label] = (statistics.median(claims), statistics.median(writes))
    (c0, w0), (c1, w1) = results["without"], results["with"]
    print(
        f"a 256-score chunk of a score run (median of {len(ids) // 256}, rolled back): claim {c0:.1f} -> "
        f"{c1:.1f} ms, results {w0:.1f} -> {w1:.1f} ms, without -> with the score tally's triggers; {load()}"
    )
    categories = list(Campaign.objects.get(pk=campaign_id).scheme.categories.values_list("pk", flat=True))
    loop = _FINAL_LOOP.format(campaign=int(campaign_id), n=n_items, a=categories[0], b=categories[1])
    per_change = {}
    for label, trigger in (("without", "annotations_score_tally_item_update"), ("with", None)):
        best = []
        for _ in range(3):
            with transaction.atomic(), connection.cursor() as cur:
                for statement in _toggled("annotations_campaignitem", trigger):
                    cur.execute(statement)
                start = time.perf_counter()
                cur.execute(loop)
                best.append((time.perf_counter() - start) / (2 * n_items) * 1000)
                transaction.set_rollback(True)
        per_change[label] = min(best)
    print(
        f"a change of an item's final label (server time, best of 3 x {2 * n_items:,}, rolled back; the item "
        f"tallies' trigger runs in both): {per_change['without']:.3f} -> {per_change['with']:.3f} ms, "
        f"without -> with the score tally's trigger; {load()}"
    )
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM annotations_scoretally WHERE campaign_id = %s AND n < 0", [campaign_id]
        )
        assert cur.fetchone()[0] == 0
        # the rolled-back writes left dead rows: vacuum them, so a later run reads the same tally
        cur.execute("VACUUM ANALYZE annotations_scoretally, inference_score, annotations_campaignitem")


def main() -> None:
    """Build (or reuse) the database, time the scorer tables and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outputs", type=int, default=1_000_000)
    parser.add_argument("--database", default="audit_bench_i14")
    parser.add_argument("--reuse", action="store_true", help="Keep an existing bench database.")
    parser.add_argument("--keep", action="store_true", help="Do not drop the database at the end.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE and alternative queries.")
    args = parser.parse_args()

    print(f"machine: nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()}; {load()}")
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
    if not Scorer.objects.filter(name=STRING_MATCH).exists():
        scorers_add(campaign_id, args.seed)
    with connection.cursor() as cur:
        cur.execute("SELECT version()")
        print(f"database: {cur.fetchone()[0].split(',')[0]}")
    tally_size(campaign_id)
    run_timings(campaign_id, args.repeats)
    write_costs(campaign_id)
    if args.explain:
        explain(campaign_id)
    connection.close()
    if not args.keep:
        recreate_database(args.database, create=False)
        print(f"database {args.database} dropped (use --keep to keep it for --reuse)")


if __name__ == "__main__":
    main()
