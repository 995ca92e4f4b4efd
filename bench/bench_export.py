"""Benchmark: export 3,000,000 labels as CSV, JSONL and Parquet through the streaming export code.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_export.py \
        [--labels 3000000] [--exports labels:csv,labels:jsonl,labels:parquet,outputs:csv] [--keep]

DATABASE_URL names any database on a PostgreSQL server (that one is the default) with the right to
create databases. Creates the database `audit_bench_i7` (dropped first if present) on that server, migrates
it, fills it with COPY (prompts x models x samples outputs, three annotators' labels each), then runs each
export in a fresh subprocess writing to a file. The subprocess measures its own wall time around the
export, its CPU time (user + system, resource.getrusage) and its peak resident memory (VmHWM of
/proc/self/status: the whole process, Python, Django and the export), and the CPU time of its PostgreSQL
backend process from /proc (so the server must run on the same machine).
Goal: under 60 s and under 300 MB each. `--keep` keeps the database, `--skip-build` reuses it.
Smallest run: `--labels 30000` (under a minute).
"""

import argparse
import io
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = "audit_bench_i7"
ANNOTATORS = 3
MODELS = 4


def _database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _copy(cursor, table: str, columns: str, rows) -> None:
    """COPY rows (tuples of already-formatted text fields) in chunks."""
    buffer = io.StringIO()
    for count, row in enumerate(rows, start=1):
        buffer.write("\t".join(row) + "\n")
        if count % 200_000 == 0:
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
            buffer = io.StringIO()
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)


def build(url: str, labels: int) -> None:
    """Create, migrate and fill the benchmark database."""
    from annotations.labelling.label_summary import label_summary  # no Django: the builder speaks SQL

    admin = psycopg2.connect(_database_url(url, "postgres"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        cursor.execute(f"CREATE DATABASE {BENCH_DB}")
    admin.close()
    env = {**os.environ, "DATABASE_URL": _database_url(url, BENCH_DB)}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True)
    script = f"""
import django; django.setup()
from tests import factories
from annotations.models import Campaign, LabelScheme
from django.contrib.auth import get_user_model
members = [factories.group_member(f"name{{i}}", f"group{{i % 6}}", "name") for i in range(32)]
templates = [factories.template(f"t{{i}}", "{{name}} got into the plane to [BLANK] " * 2) for i in range(56)]
prompt_set = factories.prompt_set_with_prompts(members, templates, name="bench")
endpoints = [factories.endpoint(f"llama-{{i}}") for i in range({MODELS})]
scheme = LabelScheme.objects.get(key="qos-six")
for i in range({ANNOTATORS}):
    get_user_model().objects.create_user(username=f"annotator{{i}}", password="x")
Campaign.objects.create(name="bench", scheme=scheme, labels_per_output={ANNOTATORS})
from inference.models import GenerationRun
run = GenerationRun.objects.create(name="bench", prompt_set=prompt_set, status="completed")
run.endpoints.set(endpoints)
"""
    subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, check=True)
    connection = psycopg2.connect(_database_url(url, BENCH_DB))
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM annotations_prompt ORDER BY id")
        prompts = [str(r[0]) for r in cursor.fetchall()]
        cursor.execute("SELECT id FROM inference_modelendpoint ORDER BY id")
        endpoints = [str(r[0]) for r in cursor.fetchall()]
        cursor.execute("SELECT id FROM auth_user WHERE username LIKE 'annotator%%' ORDER BY id")
        annotators = [str(r[0]) for r in cursor.fetchall()]
        cursor.execute("SELECT id FROM inference_generationrun")
        run = str(cursor.fetchone()[0])
        cursor.execute("SELECT id FROM annotations_campaign")
        campaign = str(cursor.fetchone()[0])
        cursor.execute("SELECT id FROM annotations_labelcategory ORDER BY id")
        categories = [str(r[0]) for r in cursor.fetchall()]
        outputs = labels // ANNOTATORS
        per_sample = len(prompts) * len(endpoints)
        now = "2026-01-01 00:00:00+00"
        text = "I cannot complete this sentence, because it could promote a harmful stereotype. " * 2
        started = time.perf_counter()

        def prompt_of(i: int) -> str:
            return prompts[i % len(prompts)]

        def endpoint_of(i: int) -> str:
            return endpoints[(i // len(prompts)) % len(endpoints)]

        _copy(
            cursor,
            "inference_output",
            "id, run_id, prompt_id, endpoint_id, sample_index, status, text, finish_reason, "
            "endpoint_snapshot, request, attempts, last_error, finished_at, created_at",
            (
                (str(i + 1), run, prompt_of(i), endpoint_of(i), str(i // per_sample), "done", text, "stop",
                 "{}", "{}", "1", "", now, now)
                for i in range(outputs)
            ),
        )  # fmt: skip
        rng = random.Random(7)
        chosen = [[rng.choice(categories) for _ in annotators] for _ in range(outputs)]  # each item's labels
        _copy(
            cursor,
            "annotations_campaignitem",
            "id, campaign_id, output_id, run_id, endpoint_id, prompt_id, rank, status, label_count, is_gold, "
            "final_category_id, final_source, label_pattern, label_signature",
            (
                (str(i + 1), campaign, str(i + 1), run, endpoint_of(i), prompt_of(i), str(i), "complete",
                 str(ANNOTATORS), "f", categories[0], "unanimous",
                 *label_summary([(int(who), int(c)) for who, c in zip(annotators, chosen[i], strict=True)]))
                for i in range(outputs)
            ),
        )  # fmt: skip
        _copy(
            cursor,
            "annotations_label",
            "item_id, annotator_id, category_id, note, active_seconds, created_at, updated_at",
            (
                (str(i + 1), who, category, "=cmd" if i % 1000 == 0 else "", "4.5", now, now)
                for i in range(outputs)
                for who, category in zip(annotators, chosen[i], strict=True)
            ),
        )  # fmt: skip
        cursor.execute(
            "UPDATE inference_generationrun SET samples_per_prompt = %s", [outputs // per_sample + 1]
        )
    connection.close()
    connection = psycopg2.connect(_database_url(url, BENCH_DB))
    connection.autocommit = True
    with connection.cursor() as cursor:
        for table in ("inference_output", "annotations_campaignitem", "annotations_label"):
            sql = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"  # noqa: S608
            cursor.execute(sql)
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    elapsed = time.perf_counter() - started
    print(f"built {outputs * ANNOTATORS:,} labels on {outputs:,} outputs with COPY in {elapsed:.1f} s")


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a local process (the PostgreSQL backend), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def export_once(kind: str, file_format: str, target: str) -> None:
    """Run in the subprocess: one export to `target`, then print seconds, bytes and peak RSS (MB)."""
    import resource

    import django

    django.setup()
    from django.db import connection

    from annotations.exchange.exports import export_open

    with connection.cursor() as cursor:  # the server process that will run the export's query
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    server_before = _process_cpu_seconds(backend)
    started = time.perf_counter()
    written = 0
    with open(target, "wb") as handle:  # noqa: PTH123
        for chunk in export_open(actor=None, kind=kind, file_format=file_format).chunks:
            handle.write(chunk)
            written += len(chunk)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    server = _process_cpu_seconds(backend) - server_before
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent (the builder) across fork and exec
    peak_kb = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    print(
        f"{seconds:.2f} {written} {peak_kb / 1024:.1f}",
        f"{usage.ru_utime + usage.ru_stime:.1f} {server:.1f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--labels", type=int, default=3_000_000)
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database afterwards.")
    parser.add_argument(
        "--exports",
        default="labels:csv,labels:jsonl,labels:parquet,outputs:csv",
        help="Comma-separated kind:format pairs to run.",
    )
    parser.add_argument("--skip-build", action="store_true", help="Reuse the database of a --keep run.")
    parser.add_argument(
        "--export-once", nargs=3, metavar=("KIND", "FORMAT", "TARGET"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auditproject.settings")
    sys.path.insert(0, str(REPO))
    if args.export_once:
        export_once(*args.export_once)
        return
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    if not args.skip_build:
        build(url, args.labels)
    env = {**os.environ, "DATABASE_URL": _database_url(url, BENCH_DB)}
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    print(
        f"{'export':<16} {'wall s':>7} {'CPU s':>6} {'DB CPU s':>8} {'MB written':>11} {'peak RSS MB':>12}"
        "  goal: < 60 s, < 300 MB"
    )
    for run in args.exports.split(","):
        kind, file_format = run.split(":")
        target = f"/tmp/bench_export_i7.{file_format}"  # noqa: S108 - a scratch file
        result = subprocess.run(
            [sys.executable, __file__, "--export-once", kind, file_format, target],
            cwd=REPO, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        seconds, written, peak, cpu, server = result.stdout.split()
        name = f"{kind} {file_format}"
        print(
            f"{name:<16} {float(seconds):>7.1f} {float(cpu):>6.1f} {float(server):>8.1f}"
            f" {int(written) / 1e6:>11.1f} {float(peak):>12.1f}  (load {os.getloadavg()[0]:.1f})"
        )
        Path(target).unlink()
    if not args.keep:
        admin = psycopg2.connect(_database_url(url, "postgres"))
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        admin.close()


if __name__ == "__main__":
    main()
