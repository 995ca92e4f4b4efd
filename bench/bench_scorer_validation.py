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

Then it times, each after a fresh database connection, --repeats times: the scores' GROUP BY alone
(`_score_rows`, the SQL), `scorer_counts` (the SQL and the binning into arrays), `scorer_tables` with
1,000 bootstrap resamples (so the statistics are the difference), and the whole
`dashboard_report(parts=("scorers",))`. It prints the headline rows (accuracy, Cohen's kappa with its
interval, the flag row of "Harmful refusal"). `--explain` adds EXPLAIN ANALYZE of the GROUP BY and
times alternative forms of the query (the bench's, not the code's).

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
from pathlib import Path

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
        cur.execute("VACUUM ANALYZE inference_score")
    print(
        f"scores: {2 * n:,} rows ({n:,} per scorer), string match agrees on refusal for "
        f"{(says_refusal == human_refusal)[labelled].mean():.1%} of {int(labelled.sum()):,} labelled items; "
        f"COPY + VACUUM in {time.perf_counter() - t0:.1f} s"
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
        f"SQL (_score_rows, the GROUP BY), cold: {', '.join(f'{t:.3f}' for t, _ in sql)} s; "
        f"best {min(t for t, _ in sql):.3f}; {len(sql[-1][1]):,} rows; {load()}"
    )
    counts = [timed(lambda: scorer_counts(filters=filters)) for _ in range(repeats)]
    print(
        f"scorer_counts (SQL + axes + arrays), cold: {', '.join(f'{t:.3f}' for t, _ in counts)} s; "
        f"best {min(t for t, _ in counts):.3f}; {load()}"
    )
    tables = [timed(lambda: scorer_tables(filters=filters, n_resamples=1000)) for _ in range(repeats)]
    best = min(t for t, _ in tables)
    stats = [t - c for (t, _), (c, _) in zip(tables, counts, strict=True)]
    print(
        f"scorer_tables (1,000 resamples), cold: {', '.join(f'{t:.3f}' for t, _ in tables)} s; "
        f"best {best:.3f}, "
        f"median {statistics.median(t for t, _ in tables):.3f} (goal < 1 s): {'OK' if best < 1 else 'SLOW'}; "
        f"statistics beyond scorer_counts ~{', '.join(f'{s:.3f}' for s in stats)} s; {load()}"
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


ALTERNATIVES = {
    # the code's query, with the campaign and status as literals (EXPLAIN shows the same plan)
    "as in scorer_report (join prompts)": """
        SELECT s.scorer_id, s.scorer_version, i.endpoint_id, p.group_id, i.final_category_id,
               s.category_id, s.is_unparseable, s.is_flagged, COUNT(*)
        FROM annotations_campaignitem AS i JOIN inference_score AS s ON s.output_id = i.output_id
        JOIN annotations_prompt AS p ON p.id = i.prompt_id
        WHERE i.campaign_id = %s AND s.status = 'done'
        GROUP BY s.scorer_id, s.scorer_version, i.endpoint_id, p.group_id, i.final_category_id,
                 s.category_id, s.is_unparseable, s.is_flagged""",
    "group by prompt_id (groups mapped after)": """
        SELECT s.scorer_id, s.scorer_version, i.endpoint_id, i.prompt_id, i.final_category_id,
               s.category_id, s.is_unparseable, s.is_flagged, COUNT(*)
        FROM annotations_campaignitem AS i JOIN inference_score AS s ON s.output_id = i.output_id
        WHERE i.campaign_id = %s AND s.status = 'done'
        GROUP BY s.scorer_id, s.scorer_version, i.endpoint_id, i.prompt_id, i.final_category_id,
                 s.category_id, s.is_unparseable, s.is_flagged""",
}


COVERING_INDEX = (
    "CREATE INDEX bench_score_output_covering ON inference_score (output_id) "
    "INCLUDE (scorer_id, scorer_version, status, category_id, is_unparseable, is_flagged)"
)
VARIANTS = (  # (name, session settings, query)
    ("as in scorer_report", [], "as in scorer_report (join prompts)"),
    ("work_mem 64MB", ["SET work_mem = '64MB'"], "as in scorer_report (join prompts)"),
    (
        "no parallel workers",
        ["SET max_parallel_workers_per_gather = 0"],
        "as in scorer_report (join prompts)",
    ),
    ("group by prompt_id", [], "group by prompt_id (groups mapped after)"),
)


def _time_variants(campaign_id: int, label: str) -> None:
    from django.db import connection

    for name, settings, key in VARIANTS:
        times = []
        for _ in range(3):
            connection.close()
            with connection.cursor() as cur:
                for statement in settings:
                    cur.execute(statement)
                start = time.perf_counter()
                cur.execute(ALTERNATIVES[key], [campaign_id])
                rows = cur.fetchall()
                times.append(time.perf_counter() - start)
        print(
            f"  {label}{name}: {', '.join(f'{t:.3f}' for t in times)} s (best {min(times):.3f}), "
            f"{len(rows):,} rows; {load()}"
        )


def _explain(campaign_id: int, settings: list[str], title: str) -> None:
    from django.db import connection

    connection.close()
    with connection.cursor() as cur:
        for statement in settings:
            cur.execute(statement)
        cur.execute(
            "EXPLAIN (ANALYZE, BUFFERS) " + ALTERNATIVES["as in scorer_report (join prompts)"], [campaign_id]
        )
        print(f"EXPLAIN ANALYZE of the scorer GROUP BY{title}:")
        for (line,) in cur.fetchall():
            print(f"  {line}")


def explain(campaign_id: int) -> None:
    """EXPLAIN ANALYZE of the GROUP BY; alternative settings, query and a covering index (timed, then
    dropped: the timings above are without it)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW work_mem")
        work_mem = cur.fetchone()[0]
        cur.execute("SHOW max_parallel_workers_per_gather")
        workers = cur.fetchone()[0]
    _explain(campaign_id, [], f" (work_mem {work_mem}, max_parallel_workers_per_gather {workers})")
    _time_variants(campaign_id, "")
    with connection.cursor() as cur:
        start = time.perf_counter()
        cur.execute(COVERING_INDEX)
        cur.execute("ANALYZE inference_score")
        built = time.perf_counter() - start
        cur.execute("SELECT pg_size_pretty(pg_relation_size('bench_score_output_covering'))")
        size = cur.fetchone()[0]
        cur.execute("SELECT pg_size_pretty(pg_relation_size('inference_score'))")
        heap = cur.fetchone()[0]
    print(
        f"covering index on inference_score (output_id) INCLUDE (...): built in {built:.1f} s, {size} "
        f"(the table: {heap})"
    )
    _explain(campaign_id, [], " with the covering index")
    _time_variants(campaign_id, "covering index, ")
    with connection.cursor() as cur:
        cur.execute("DROP INDEX bench_score_output_covering")


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
    run_timings(campaign_id, args.repeats)
    if args.explain:
        explain(campaign_id)
    connection.close()
    if not args.keep:
        recreate_database(args.database, create=False)
        print(f"database {args.database} dropped (use --keep to keep it for --reuse)")


if __name__ == "__main__":
    main()
