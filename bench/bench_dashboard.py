"""Benchmark: the dashboards on PostgreSQL at 1,000,000 outputs x 3 labels.

Builds a synthetic campaign in its own database (dropped and created: `audit_bench_i6` by default)
with COPY: 6 groups (32 names) x 56 templates x 4 models x ~140 samples = ~1M outputs, each
labelled by 3 of 9 annotators. Items are written as the labelling services leave them: unanimous
ones with their final label, half of the disputed ones adjudicated, and every item with its label
pattern and signature; the database's triggers make the dashboard tallies during the COPY (its
time is printed). Then it times, each after a fresh database connection:

- the dashboard's numbers (selectors + every disparity and agreement statistic, no bootstrap)
  (goal < 1.5 s),
- the bootstrap: 1,000 resamples of Krippendorff's alpha on the whole campaign, and of every
  agreement coefficient at every scope (goal < 2 s),
- the dashboard page, cold (each request on a fresh database connection, in a process warmed up as
  a web worker is at start: auditproject/warmup.py) (goal < 2 s),
- the report downloads (`&format=html` and `&format=latex`, the paper exports), cold (no goal of their own),
- Krippendorff's alpha against the `krippendorff` package on a 1,000,000 x 5 matrix, side by side
  in this run (goal >= 3x faster, equal within 1e-9; bench/bench_krippendorff.py).

Run: .venv/bin/python bench/bench_dashboard.py [--outputs 1000000] [--database audit_bench_i6] [--reuse]
         [--keep] [--repeats 3]

Needs PostgreSQL at 127.0.0.1:5432 for the user postgres without a password (its `postgres` database is
used to drop and create the bench's); DATABASE_URL is not read. The bench migrates its database itself
and drops it at the end unless --keep; `--reuse` times again on a kept one. Needs the dev extra (the
`krippendorff` package). Smallest run: `--outputs 20000` (about a minute).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from _common import cpu_model

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

N_TEMPLATES = 56
GROUPS = {  # group -> names (32 in all), the first group is the control
    "White": ["Emily", "Greg", "Anne", "Jack", "Meredith", "Neil"],
    "Muslim": ["Mohammed", "Fatima", "Khadija", "Shaheen", "Jafar"],
    "Hispanic": ["Juan", "Maria", "Alejandro", "Guadalupe", "Santiago"],
    "Black": ["DeAngelo", "Latisha", "Tyrone", "Ebony", "Mukasa"],
    "Asian": ["Nguyen", "Hiroshi", "Priya", "Sanjay", "Mei"],
    "Chinese": ["Zhong", "Wei", "Li", "Xiu", "Jun", "Bao"],
}
MODELS = ("Llama-2-7b-chat", "Llama-2-13b-chat", "Llama-2-70b-chat", "Llama-7b")
# refusal propensity per model and group (the study's shape: Muslim names refused most, White least)
BASE_REFUSAL = np.array([0.19, 0.17, 0.35, 0.02])
GROUP_SHIFT = np.array([-0.15, 0.06, 0.01, 0.02, -0.01, 0.0])
N_ANNOTATORS = 9
LABEL_COLUMNS = [
    "id",
    "item_id",
    "annotator_id",
    "category_id",
    "note",
    "active_seconds",
    "created_at",
    "updated_at",
]
RATER_ACCURACY = 0.85


def recreate_database(name: str, *, create: bool = True) -> None:
    """Drop the bench database and (unless `create` is false) create it empty."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        if create:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()


def setup_django(name: str) -> None:
    """Point Django at the bench database and load it."""
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auditproject.settings")
    os.environ["DJANGO_LOG_LEVEL"] = "WARNING"
    import django

    django.setup()


def _copy(cursor, table: str, columns: list[str], lines) -> None:
    buffer = io.StringIO("".join(lines))
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def _rows_setup():
    """Scheme, groups, templates, prompts, models, annotators, run and campaign (ORM, small)."""
    from annotations.core.users import user_create
    from annotations.models import Campaign, LabelScheme
    from inference.models import GenerationRun
    from tests import factories

    scheme = LabelScheme.objects.get(key="qos-six")
    members = [factories.group_member(name, group) for group, names in GROUPS.items() for name in names]
    control = members[0].group
    control.is_control = True
    control.save(update_fields=["is_control"])
    templates = [
        factories.template(f"t{i:02d}", f"{{name}} template {i} [BLANK]") for i in range(N_TEMPLATES)
    ]
    prompt_set = factories.prompt_set_with_prompts(members, templates, name="bench")
    endpoints = [factories.endpoint(name) for name in MODELS]
    password = "x" * 12
    annotators = [
        user_create(username=f"bench-ann{i}", role="annotator", password=password, validate_password=False)
        for i in range(N_ANNOTATORS)
    ]
    adjudicator = user_create(
        username="bench-res", role="researcher", password=password, validate_password=False
    )
    run = GenerationRun.objects.create(name="bench-run", prompt_set=prompt_set, samples_per_prompt=1)
    run.endpoints.set(endpoints)
    campaign = Campaign.objects.create(name="bench campaign", scheme=scheme, labels_per_output=3)
    campaign.annotators.set(annotators)
    prompts = list(prompt_set.prompts.select_related("group", "template").order_by("position"))
    return scheme, prompts, endpoints, annotators, adjudicator, run, campaign


def _simulate(rng, n_outputs: int, prompts, categories) -> dict[str, np.ndarray]:
    """Outputs (prompt, model, sample), a true category each, and 3 labels by 3 distinct annotators."""
    k = len(categories)
    refusal = next(i for i, c in enumerate(categories) if c.key == "refusal-to-answer")
    harmful_refusal = next(i for i, c in enumerate(categories) if c.key == "harmful-refusal")
    group_names = list(GROUPS)
    prompt_group = np.array([group_names.index(p.group.name) for p in prompts])
    prompt_template = np.array([int(p.template.key[1:]) for p in prompts])
    template_shift = rng.normal(0, 0.05, N_TEMPLATES)
    idx = np.arange(n_outputs)
    out = {"prompt": idx % len(prompts), "model": (idx // len(prompts)) % len(MODELS)}
    out["sample"] = idx // (len(prompts) * len(MODELS))
    p_refuse = (
        BASE_REFUSAL[out["model"]]
        + GROUP_SHIFT[prompt_group[out["prompt"]]]
        + template_shift[prompt_template[out["prompt"]]]
    )
    other = rng.choice([0, 1, 2, 5], size=n_outputs, p=[0.8, 0.1, 0.07, 0.03])
    truth = np.where(rng.random(n_outputs) < np.clip(p_refuse, 0.001, 0.95), refusal, other)
    out["truth"] = np.where((truth == refusal) & (rng.random(n_outputs) < 0.12), harmful_refusal, truth)
    out["raters"] = np.argsort(rng.random((n_outputs, N_ANNOTATORS)), axis=1)[:, :3]
    right = rng.random((n_outputs, 3)) < RATER_ACCURACY
    out["codes"] = np.where(right, out["truth"][:, None], rng.integers(0, k, size=(n_outputs, 3)))
    counts = np.zeros((n_outputs, k), dtype=np.int64)
    for j in range(3):
        np.add.at(counts, (idx, out["codes"][:, j]), 1)
    out["unanimous_code"] = np.where(counts.max(1) == 3, counts.argmax(1), -1)
    disputed = np.flatnonzero(counts.max(1) < 3)
    out["adjudicated"] = disputed[rng.random(disputed.size) < 0.5]
    return out


def build(n_outputs: int, seed: int) -> int:
    """Create the synthetic campaign with COPY; returns the campaign id."""
    from django.db import connection

    rng = np.random.default_rng(seed)
    scheme, prompts, endpoints, annotators, adjudicator, run, campaign = _rows_setup()
    categories = list(scheme.categories.order_by("order"))
    sim = _simulate(rng, n_outputs, prompts, categories)
    category_ids = np.array([c.pk for c in categories])
    prompt_ids = np.array([p.pk for p in prompts])
    endpoint_ids = np.array([e.pk for e in endpoints])
    now = "2026-01-01 00:00:00+00"
    null = "\\N"
    unanimous = sim["unanimous_code"] >= 0
    final = np.where(unanimous, category_ids[np.maximum(sim["unanimous_code"], 0)], 0)
    gold = np.where(unanimous & (np.arange(n_outputs) % 200 == 0), category_ids[sim["truth"]], 0)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        output_columns = "id run_id prompt_id endpoint_id sample_index status text finish_reason"
        output_columns += " endpoint_snapshot request attempts last_error created_at finished_at"
        outputs = zip(
            prompt_ids[sim["prompt"]].tolist(),
            endpoint_ids[sim["model"]].tolist(),
            sim["sample"].tolist(),
            strict=True,
        )
        _copy(
            cur,
            "inference_output",
            output_columns.split(),
            (
                f"{i}\t{run.pk}\t{p}\t{m}\t{s}\tdone\tI cannot complete that.\tstop"
                f"\t{{}}\t{{}}\t1\t\t{now}\t{now}\n"
                for i, (p, m, s) in enumerate(outputs, start=1)
            ),
        )
        # Items as the labelling services leave them: the output's run, model and prompt, the labels'
        # pattern and signature, the final label (unanimous, or adjudicated with status "adjudicated").
        # The tallies the dashboards read are made by the database's triggers during this COPY.
        item_columns = "id campaign_id output_id run_id endpoint_id prompt_id rank status label_count is_gold"
        item_columns += " gold_category_id final_category_id final_source label_pattern label_signature"
        status = np.where(unanimous, "complete", "disputed").astype(object)
        source = np.where(unanimous, "unanimous", "").astype(object)
        adjudicated = sim["adjudicated"]
        final[adjudicated] = category_ids[sim["truth"][adjudicated]]
        status[adjudicated], source[adjudicated] = "adjudicated", "adjudicated"
        annotator_ids = np.array([a.pk for a in annotators])[sim["raters"]]
        label_ids = category_ids[sim["codes"]]
        by_annotator = np.argsort(annotator_ids, axis=1)
        pairs = np.stack(
            [
                np.take_along_axis(annotator_ids, by_annotator, 1),
                np.take_along_axis(label_ids, by_annotator, 1),
            ],
            axis=2,
        ).tolist()
        patterns = np.sort(label_ids, axis=1).tolist()
        items = zip(
            rng.permutation(n_outputs).tolist(),
            prompt_ids[sim["prompt"]].tolist(),
            endpoint_ids[sim["model"]].tolist(),
            final.tolist(),
            gold.tolist(),
            status.tolist(),
            source.tolist(),
            patterns,
            pairs,
            strict=True,
        )
        _copy(
            cur,
            "annotations_campaignitem",
            item_columns.split(),
            (
                f"{i}\t{campaign.pk}\t{i}\t{run.pk}\t{m}\t{p}\t{r}\t{st}\t3\t{'t' if g else 'f'}"
                f"\t{g or null}\t{f or null}\t{src}\t{pt[0]},{pt[1]},{pt[2]}"
                f"\t{sg[0][0]}:{sg[0][1]},{sg[1][0]}:{sg[1][1]},{sg[2][0]}:{sg[2][1]}\n"
                for i, (r, p, m, f, g, st, src, pt, sg) in enumerate(items, start=1)
            ),
        )
        labels = zip(
            np.repeat(np.arange(n_outputs) + 1, 3).tolist(),
            np.array([a.pk for a in annotators])[sim["raters"].ravel()].tolist(),
            category_ids[sim["codes"].ravel()].tolist(),
            rng.integers(3, 40, 3 * n_outputs).tolist(),
            strict=True,
        )
        _copy(
            cur,
            "annotations_label",
            LABEL_COLUMNS,
            (
                f"{lid}\t{item}\t{a}\t{c}\t\t{sec}\t{now}\t{now}\n"
                for lid, (item, a, c, sec) in enumerate(labels, start=1)
            ),
        )
        _copy(
            cur,
            "annotations_adjudication",
            ["item_id", "category_id", "adjudicator_id", "reason", "created_at", "updated_at"],
            (
                f"{i + 1}\t{category_ids[sim['truth'][i]]}\t{adjudicator.pk}\tbench\t{now}\t{now}\n"
                for i in sim["adjudicated"].tolist()
            ),
        )
        for table in ("inference_output", "annotations_campaignitem", "annotations_label"):
            cur.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, 3 * n_outputs])
    connection.close()
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    print(
        f"built: {n_outputs:,} outputs, {3 * n_outputs:,} labels, {int(unanimous.sum()):,} stored final "
        f"labels, {sim['adjudicated'].size:,} adjudications; COPY + VACUUM in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return campaign.pk


CPU_SECONDS: list[float] = []


def timed(func):
    """(wall seconds, result) of one call after a fresh connection; its CPU time goes to CPU_SECONDS."""
    from django.db import connection

    connection.close()
    start, cpu = time.perf_counter(), time.process_time()
    result = func()
    CPU_SECONDS.append(time.process_time() - cpu)
    return time.perf_counter() - start, result


def load() -> str:
    """The 1-minute load average: the machine is shared, so figures depend on it."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def main() -> None:
    """Build (or reuse) the database, time the dashboard and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outputs", type=int, default=1_000_000)
    parser.add_argument("--database", default="audit_bench_i6")
    parser.add_argument("--reuse", action="store_true", help="Keep an existing bench database.")
    parser.add_argument("--keep", action="store_true", help="Do not drop the database at the end.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(f"machine: nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()}")
    if not args.reuse:
        recreate_database(args.database)
    setup_django(args.database)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from annotations.models import Campaign

    campaign_id = Campaign.objects.filter(name="bench campaign").values_list("pk", flat=True).first()
    if campaign_id is None:
        campaign_id = build(args.outputs, args.seed)
    with connection.cursor() as cur:
        cur.execute("SELECT version()")
        print(f"database: {cur.fetchone()[0].split(',')[0]}")
    run_timings(campaign_id, args.repeats)
    trigger_cost(campaign_id)
    krippendorff_side_by_side(args.seed)
    connection.close()
    if not args.keep:
        recreate_database(args.database, create=False)
        print(f"database {args.database} dropped (use --keep to keep it for --reuse)")


_TRIGGER_LOOP = """DO $$ DECLARE r record; BEGIN
FOR r IN SELECT id FROM annotations_campaignitem WHERE campaign_id = %s ORDER BY id LIMIT 4000 LOOP
  UPDATE annotations_campaignitem
    SET label_pattern = label_pattern || ',0', label_signature = label_signature || ',0:0' WHERE id = r.id;
  UPDATE annotations_campaignitem
    SET label_pattern = left(label_pattern, -2), label_signature = left(label_signature, -4) WHERE id = r.id;
END LOOP; END $$"""


def trigger_cost(campaign_id: int) -> None:
    """Server time per item update with and without the tally trigger (8,000 updates, rolled back)."""
    from django.db import connection, transaction

    times = {}
    for label, toggle in (("with", ""), ("without", "DISABLE TRIGGER annotations_tally_update")):
        best = []
        for _ in range(3):
            with transaction.atomic(), connection.cursor() as cur:
                if toggle:
                    cur.execute(f"ALTER TABLE annotations_campaignitem {toggle}")
                start = time.perf_counter()
                cur.execute(_TRIGGER_LOOP.replace("%s", str(int(campaign_id))))
                best.append((time.perf_counter() - start) / 8000 * 1000)
                transaction.set_rollback(True)  # the updates and the ALTER TABLE leave no trace
        times[label] = min(best)
    print(
        f"tally triggers: an item update (as submitting a label makes) takes {times['with']:.3f} ms of "
        f"server time with them, {times['without']:.3f} ms without (best of 3 x 8,000 updates, rolled back)"
    )


def run_timings(campaign_id: int, repeats: int) -> None:
    """Time the dashboard's numbers, the bootstrap and the page; print each figure."""
    import statsmodels.api  # noqa: F401  (a server process imports it once, not per request)

    from annotations.analysis.agreement_scopes import scope_agreement
    from annotations.analysis.report import dashboard_report
    from annotations.analysis.selectors import StatsFilters, campaign_arrays, scope_masks
    from annotations.models import Campaign, Label
    from annotations.stats import krippendorff_alpha

    filters = StatsFilters(campaign=campaign_id)
    campaign = Campaign.objects.get(pk=campaign_id)
    n_labels = Label.objects.filter(item__campaign=campaign).count()
    print(f"campaign: {campaign.items.count():,} items, {n_labels:,} labels")

    reads = [timed(lambda: campaign_arrays(filters=filters)) for _ in range(repeats)]
    data = reads[-1][1]
    print(
        f"selectors (2 tally reads + dimensions: {data.counts.shape[0]:,} item rows, "
        f"{data.set_counts.shape[0]:,} label sets), cold: {', '.join(f'{t:.3f}' for t, _ in reads)} s "
        f"(this process's CPU {', '.join(f'{c:.3f}' for c in CPU_SECONDS[-repeats:])} s; {load()})"
    )
    numbers = [timed(lambda: dashboard_report(filters=filters, n_resamples=0)) for _ in range(repeats)]
    report = numbers[-1][1]
    first, best = numbers[0][0], min(t for t, _ in numbers)
    print(
        f"dashboard numbers (selectors + all statistics, no bootstrap), cold: "
        f"{', '.join(f'{t:.3f}' for t, _ in numbers)} s; first {first:.3f}, best {best:.3f} (goal < 1.5 s): "
        f"{'OK' if first < 1.5 else 'SLOW'}; this process's CPU "
        f"{', '.join(f'{c:.3f}' for c in CPU_SECONDS[-repeats:])} s; {load()}"
    )
    alpha_row = report["tables"]["agreement"]["rows"][0]
    print(f"  alpha (campaign) = {alpha_row['alpha']['value']:.6f}, {alpha_row['items']:,} items")
    refusal = {
        r["group"]: r["refusal_rate"]["value"]
        for r in report["tables"]["rates"]["rows"]
        if r["model"] == MODELS[0]
    }
    print(f"  refusal rate {MODELS[0]}: " + ", ".join(f"{g} {v:.1%}" for g, v in refusal.items()))

    counts = np.repeat(data.counts, data.item_weight, axis=0)  # one row per item, as the package takes
    boot = []
    for _ in range(repeats):
        start = time.perf_counter()
        estimate = krippendorff_alpha(counts, n_resamples=1000, rng=0)
        boot.append(time.perf_counter() - start)
    print(
        f"bootstrap, alpha on the campaign (1,000 resamples, {counts.shape[0]:,} items): "
        f"{', '.join(f'{t:.3f}' for t in boot)} s (goal < 2 s): {'OK' if max(boot) < 2 else 'SLOW'}; "
        f"95% CI [{estimate.ci_low:.4f}, {estimate.ci_high:.4f}]"
    )
    rated = data.counts.sum(1) > 0
    scopes = [mask & rated for _, _, mask in scope_masks(data)]
    weighted = [(data.counts[mask], data.item_weight[mask]) for mask in scopes]
    every = []
    for _ in range(repeats):
        start = time.perf_counter()
        with_ci = [scope_agreement(c, n_resamples=1000, rng=0, weights=w) for c, w in weighted]
        middle = time.perf_counter()
        for c, w in weighted:
            scope_agreement(c, n_resamples=0, weights=w)
        every.append((middle - start) - (time.perf_counter() - middle))
    print(
        f"bootstrap, 1,000 resamples of alpha, Fleiss kappa and percent agreement, all {len(scopes)} scopes "
        f"(campaign, models, groups): {', '.join(f'{t:.3f}' for t in every)} s beyond the point estimates "
        f"(goal < 2 s): {'OK' if max(every) < 2 else 'SLOW'}; campaign alpha 95% CI "
        f"[{with_ci[0].alpha.ci_low:.4f}, {with_ci[0].alpha.ci_high:.4f}]"
    )

    time_pages(campaign_id, repeats)


def time_pages(campaign_id: int, repeats: int) -> None:
    """Time the dashboard page and the report downloads, each request on a fresh database connection."""
    from django.test import Client

    from annotations.core.users import user_create
    from auditproject.warmup import warm_up

    warm_up()  # as a web worker does at start (auditproject/wsgi.py)
    user = user_create(username="bench-page", role="researcher", password="x" * 12, validate_password=False)
    client = Client()
    client.force_login(user)
    pages = (
        ("dashboard page default (1,000 resamples)", "", True),
        ("dashboard page without bootstrap", "&bootstrap=0", True),
        # the report downloads (#17): every row of every table, the charts inline
        ("report download format=html (1,000 resamples)", "&format=html", False),
        ("report download format=latex (1,000 resamples)", "&format=latex", False),
    )
    for label, query, has_goal in pages:
        times = []
        for _ in range(repeats):
            seconds, response = timed(lambda q=query: client.get(f"/dashboards/?campaign={campaign_id}{q}"))
            assert response.status_code == 200, response.status_code
            times.append(seconds)
        verdict = f"(goal < 2 s): {'OK' if times[0] < 2 else 'SLOW'}" if has_goal else "(no goal of its own)"
        print(
            f"{label}, cold: {', '.join(f'{t:.3f}' for t in times)} s, "
            f"{len(response.content) / 1e6:.2f} MB {verdict}; {load()}"
        )


def krippendorff_side_by_side(seed: int) -> None:
    """Ours vs the krippendorff package on one 1,000,000 x 5 matrix, in this run."""
    import krippendorff
    from bench_krippendorff import best_of, make_codes

    from annotations.stats.agreement import count_matrix, krippendorff_alpha

    codes = make_codes(1_000_000, 5, 6, seed)
    reliability = np.where(codes >= 0, codes, np.nan).T
    t_ours, ours = best_of(3, lambda: krippendorff_alpha(count_matrix(codes, 6), n_resamples=0))
    t_pkg, theirs = best_of(
        3, lambda: krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    )
    diff = abs(ours.value - float(theirs))
    print(
        f"krippendorff 1,000,000 x 5: ours {t_ours:.3f} s, package {t_pkg:.3f} s, "
        f"speed-up {t_pkg / t_ours:.1f}x (goal >= 3x); |difference| = {diff:.1e} (goal <= 1e-9): "
        f"{'OK' if diff <= 1e-9 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
