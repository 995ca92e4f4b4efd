"""Benchmark: "next item" and "submit label" on PostgreSQL with a campaign of 1,000,000 outputs x 3 labels.

Run: .venv/bin/python bench/bench_next_item.py [--outputs 1000000] [--seconds 20] [--clients 1,16]
         [--workers 5] [--via service|http|gunicorn] [--think 3] [--server postgres://postgres@127.0.0.1:5432/postgres]
         [--keep] [--reuse]

It creates (and at the end drops) its own database `audit_bench_i5`, builds the outputs server-side with
INSERT ... SELECT generate_series (seconds, not minutes); `--keep` leaves it, and `--reuse --keep` times
again on the kept one (its campaign already holds the earlier runs' labels). It then runs N annotators,
each looping next -> submit for --seconds with no pause, served by W worker processes as gunicorn would
serve them (default W = 2 x cores + 1; each worker serves its share of the annotators in turn, so the
others wait for a free worker as they would in front of a server; `--workers 16` gives every annotator a
process of its own). Times are server time per call: the service functions (`--via service`, the
default) or the whole Django request through the test client, with session auth, permission checks and
JSON (`--via http`). Django runs with its production settings (DJANGO_DEBUG=0, a Redis cache at
AUDIT_CACHE_URL, default redis://127.0.0.1:6379/12), as docker-compose deploys it.
Needs PostgreSQL at --server (with the right to create databases; DATABASE_URL is not read, the bench
points Django at its own database and migrates it) and Redis at AUDIT_CACHE_URL.
`--via gunicorn` serves the project with gunicorn (`--workers`, production settings, as docker-compose
runs it) on a loopback port and drives it from this process with asyncio and httpx: each of --clients
annotators has an API token and loops next item -> think (uniform 0.5-1.5 x --think s) -> submit; times
are client-side wall times of whole HTTP requests, and every non-2xx answer or exception is counted.
Smallest run: `--outputs 20000 --seconds 5 --clients 1,4` (under a minute).
Goals: p95 < 15 ms and > 500 labels/s with 16 annotators (service); over HTTP, 200 annotators with 3 s
think time served with p95 < 50 ms and no errors (`--via gunicorn --clients 200 --think 3 --workers 5`).
"""

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from _common import cpu_model, database_drop, database_recreate, database_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DB_NAME = "audit_bench_i5"


def build(outputs: int, clients: int) -> int:
    """Migrate, then create one run with `outputs` outputs, annotators and a 3-label campaign; its id."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection

    from annotations.models import Campaign, LabelScheme, PromptSet
    from inference.models import GenerationRun, ModelEndpoint

    call_command("migrate", verbosity=0)
    prompt_set = PromptSet.objects.create(name="bench")
    endpoint = ModelEndpoint.objects.create(name="bench-model", served_model_name="m")
    run = GenerationRun.objects.create(
        name="bench", prompt_set=prompt_set, kind="imported", status="completed"
    )
    prompts = 1000
    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO annotations_prompt (prompt_set_id, position, key, text, attributes)
               SELECT %s, g, 'p' || g, 'Name' || g || ' got into the plane to [BLANK]', '{}'
               FROM generate_series(0, %s - 1) g""",
            [prompt_set.pk, prompts],
        )
        cur.execute("SELECT min(id) FROM annotations_prompt WHERE prompt_set_id = %s", [prompt_set.pk])
        first_prompt = cur.fetchone()[0]
        cur.execute(
            """INSERT INTO inference_output (run_id, prompt_id, endpoint_id, sample_index, status, text,
                   finish_reason, endpoint_snapshot, request, attempts, last_error, created_at)
               SELECT %s, %s + (g %% %s), %s, g / %s, 'done', 'visit family and friends, output ' || g,
                   'stop', '{}', '{}', 0, '', now()
               FROM generate_series(0, %s - 1) g""",
            [run.pk, first_prompt, prompts, endpoint.pk, prompts, outputs],
        )
    built_outputs = time.perf_counter() - started
    group = Group.objects.get(name="annotator")
    users = [get_user_model().objects.create(username=f"bench{i}") for i in range(clients)]
    for user in users:
        user.set_password("bench-password-123")
        user.save()
        user.groups.add(group)
    campaign = Campaign.objects.create(
        name="bench", scheme=LabelScheme.objects.get(key="qos-six"), labels_per_output=3, seed=7
    )
    campaign.annotators.set(users)
    started_items = time.perf_counter()
    with connection.cursor() as cur:
        # The fixed random order: ranks from a hash of the output id and the campaign's seed.
        cur.execute(
            """INSERT INTO annotations_campaignitem
                   (campaign_id, output_id, run_id, endpoint_id, prompt_id, rank, status, label_count,
                    is_gold, final_source, label_pattern, label_signature)
               SELECT %s, id, run_id, endpoint_id, prompt_id,
                   row_number() OVER (ORDER BY md5(id::text || %s)) - 1, 'open', 0, false, '', '', ''
               FROM inference_output WHERE run_id = %s""",
            [campaign.pk, str(campaign.seed), run.pk],
        )
        cur.execute("ANALYZE")
    print(
        f"built {outputs:,} outputs in {built_outputs:.1f} s and {outputs:,} campaign items in "
        f"{time.perf_counter() - started_items:.1f} s"
    )
    return campaign.pk


def explain(campaign_id: int) -> None:
    """Print the plan of the next-item statement for one annotator (its lease is rolled back)."""
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from annotations.labelling import services as labelling
    from annotations.models import Campaign

    campaign = Campaign.objects.get(pk=campaign_id)
    user = campaign.annotators.order_by("username").first()
    now = timezone.now()
    params = {
        "annotator": user.pk,
        "campaign": campaign.pk,
        "now": now,
        "after": 0,
        "excluded": [],
        "depth": 64,
    }
    params["expires"] = now + timedelta(minutes=30)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, COSTS OFF) " + labelling._NEXT_STATEMENTS[False].sql, params)
        print("next-item statement plan (held lease, partially labelled items, untouched ones, lease):")
        print("\n".join("  " + row[0] for row in cur.fetchall()))
        transaction.set_rollback(True)


def worker(args: tuple) -> tuple[list[float], list[float], int, float]:
    """One worker process serving its annotators in turn, each next -> submit, until the deadline.

    Returns (next ms, submit ms, errors, CPU seconds used).
    """
    campaign_id, usernames, deadline, via, seed = args
    import random

    from django.contrib.auth import get_user_model
    from django.db import connections

    from annotations.labelling.services import assignment_next, label_submit
    from annotations.models import Campaign

    connections.close_all()
    rng = random.Random(seed)
    users = [get_user_model().objects.get(username=name) for name in usernames]
    campaign = Campaign.objects.select_related("scheme").get(pk=campaign_id)
    next_ms: list[float] = []
    submit_ms: list[float] = []
    errors = 0
    clients = [None] * len(users)
    if via == "http":
        from django.test import Client

        clients = [Client() for _ in users]
        for client, user in zip(clients, users, strict=True):
            client.force_login(user)
    url = f"/api/campaigns/{campaign_id}/"
    cpu_started = time.process_time()
    warm = False  # the first round of a process (lazy imports, first connection) is not timed
    while time.perf_counter() < deadline:
        for user, client in zip(users, clients, strict=True):
            category = "answer" if rng.random() < 0.9 else "partial-answer"
            t0 = time.perf_counter()
            if client is None:
                lease = assignment_next(campaign=campaign, annotator=user)
                item_id = lease.item_id if lease else None
            else:
                response = client.post(url + "next/", {}, content_type="application/json", secure=True)
                item = response.json()["item"]
                item_id = item["item"] if item else None
            t1 = time.perf_counter()
            if item_id is None:
                return next_ms, submit_ms, errors, time.process_time() - cpu_started
            try:
                if client is None:
                    label_submit(campaign=campaign, annotator=user, item_id=item_id, category_key=category)
                else:
                    response = client.post(
                        url + "labels/",
                        {"item": item_id, "category": category},
                        content_type="application/json",
                        secure=True,
                    )
                    if response.status_code != 201:
                        raise RuntimeError(response.content)
            except Exception:  # counted and reported, never hidden
                errors += 1
            t2 = time.perf_counter()
            if warm:
                next_ms.append((t1 - t0) * 1000)
                submit_ms.append((t2 - t1) * 1000)
        warm = True
    cpu = time.process_time() - cpu_started
    connections.close_all()
    return next_ms, submit_ms, errors, cpu


def percentiles(values: list[float]) -> str:
    """p50/p95/p99 in ms."""
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:6.2f}  p95 {q[94]:6.2f}  p99 {q[98]:6.2f} ms"


def run_phase(campaign_id: int, clients: int, workers: int, seconds: float, via: str) -> None:
    """Run `clients` annotators on `workers` processes for `seconds` and print their figures."""
    from django.db import connections
    from django.urls import get_resolver

    from annotations.models import Label

    get_resolver().url_patterns  # import every view and serializer once, before forking  # noqa: B018
    connections.close_all()
    before = Label.objects.count()
    connections.close_all()
    deadline = time.perf_counter() + seconds
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    names = [f"bench{i}" for i in range(clients)]
    jobs = [(campaign_id, names[w::workers], deadline, via, w) for w in range(workers)]
    with context.Pool(workers) as pool:
        results = pool.map(worker, jobs)
    elapsed = time.perf_counter() - started
    next_ms = [t for r in results for t in r[0]]
    submit_ms = [t for r in results for t in r[1]]
    errors = sum(r[2] for r in results)
    labels = Label.objects.count() - before
    cpu_ms = 1000 * sum(r[3] for r in results) / max(labels, 1)
    rate = labels / elapsed
    print(
        f"{clients:>2} annotator(s) on {workers} worker process(es), {via}: {labels:,} labels in "
        f"{elapsed:.1f} s = {rate:,.0f} labels/s"
    )
    print(f"   next item     {percentiles(next_ms)}  ({len(next_ms):,} calls)")
    print(f"   submit label  {percentiles(submit_ms)}  ({len(submit_ms):,} calls, {errors} errors)")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"   Django-side CPU per label (next + submit): {cpu_ms:.1f} ms; load average {load}")


def _gunicorn(workers: int, log_path: Path, access_path: Path | None = None):
    """gunicorn serving the project as docker-compose runs it (production settings), on a free port;
    with `access_path`, an access log of "path status milliseconds" per request (the worker's time for
    the request, from reading it to the response written: no wait in the listen queue)."""
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "DJANGO_SECURE_SSL_REDIRECT": "0"}
    command = [
        str(Path(sys.executable).parent / "gunicorn"), "auditproject.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--timeout", "120",
    ]  # fmt: skip
    if access_path is not None:
        command += ["--access-logfile", str(access_path), "--access-logformat", "%(U)s %(s)s %(M)s"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"gunicorn did not start: {log_path.read_text()[-2000:]}")


async def _annotator(
    client, *, campaign_id: int, deadline: float, think: float, seed: int, out: dict
) -> None:
    """One annotator over HTTP: next item, think, submit, think, until the deadline or no item is left."""
    import asyncio
    import random

    rng = random.Random(seed)
    url = f"/api/campaigns/{campaign_id}/"
    await asyncio.sleep(rng.uniform(0, think))  # arrivals spread over one think time
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        try:
            response = await client.post(url + "next/", json={})
            item = response.json().get("item") if response.status_code == 200 else None
        except Exception as exc:  # counted and reported, never hidden
            out["errors"].append(f"next: {type(exc).__name__}")
            continue
        out["next"].append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            out["errors"].append(f"next: {response.status_code} {response.text[:160]}")
            await asyncio.sleep(think)
            continue
        if item is None:
            return
        await asyncio.sleep(rng.uniform(0.5, 1.5) * think)
        category = "answer" if rng.random() < 0.9 else "partial-answer"
        t1 = time.perf_counter()
        try:
            response = await client.post(url + "labels/", json={"item": item["item"], "category": category})
        except Exception as exc:
            out["errors"].append(f"submit: {type(exc).__name__}")
            continue
        out["submit"].append((time.perf_counter() - t1) * 1000)
        if response.status_code != 201:
            out["errors"].append(f"submit: {response.status_code} {response.text[:160]}")


def run_gunicorn_phase(campaign_id: int, clients: int, workers: int, seconds: float, think: float) -> None:
    """`clients` annotators with API tokens against gunicorn over loopback, thinking `think` s per step."""
    import asyncio
    import tempfile

    import httpx
    from django.contrib.auth import get_user_model
    from django.db import connections

    from annotations.core.tokens import token_issue
    from annotations.models import Label

    users = list(get_user_model().objects.filter(username__in=[f"bench{i}" for i in range(clients)]))
    tokens = [token_issue(user=user, name="bench")[1] for user in users]
    before = Label.objects.count()
    connections.close_all()
    log_path = Path(tempfile.mkdtemp()) / "gunicorn.log"
    access_path = log_path.with_name("access.log")
    server, base = _gunicorn(workers, log_path, access_path)
    out: dict[str, list] = {"next": [], "submit": [], "errors": []}

    async def drive() -> float:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        sessions = [
            httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Token {t}"}, limits=limits, timeout=60
            )
            for t in tokens
        ]
        async with asyncio.TaskGroup() as group:  # one warm-up call each, not timed
            for session in sessions:
                group.create_task(session.get(f"/api/campaigns/{campaign_id}/"))
        started = time.perf_counter()
        deadline = started + seconds
        async with asyncio.TaskGroup() as group:
            for i, session in enumerate(sessions):
                group.create_task(
                    _annotator(
                        session, campaign_id=campaign_id, deadline=deadline, think=think, seed=i, out=out
                    )
                )
        for session in sessions:
            await session.aclose()
        return time.perf_counter() - started

    try:
        elapsed = asyncio.run(drive())
    finally:
        server.terminate()
        server.wait(timeout=30)
    labels = Label.objects.count() - before
    print(
        f"{clients} annotators over HTTP (gunicorn, {workers} workers, token auth), think {think:g} s: "
        f"{labels:,} labels in {elapsed:.1f} s = {labels / elapsed:,.1f} labels/s"
    )
    print(f"   next item     {percentiles(out['next'])}  ({len(out['next']):,} calls)")
    print(f"   submit label  {percentiles(out['submit'])}  ({len(out['submit']):,} calls)")
    both = out["next"] + out["submit"]
    print(
        f"   every request {percentiles(both)}; errors {len(out['errors'])} {sorted(set(out['errors']))[:5]}"
    )
    served = []
    for line in access_path.read_text().splitlines():
        path, _, millis = line.rpartition(" ")
        if path.endswith(("/next/ 200", "/labels/ 201")) and millis.isdigit():
            served.append(float(millis))
    if served:
        print(
            f"   server side   {percentiles(served)}  (gunicorn's time per request in the worker, "
            "whole milliseconds; the rest of the client's time is the listen queue and the client's own lag)"
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"   load average {load} (the client runs on the same 2 cores as gunicorn and PostgreSQL)")


def run_profile(campaign_id: int, requests: int) -> None:
    """`requests` next -> submit cycles through Django's WSGI handler with token auth, in this process,
    under cProfile: queries and SQL time per request, Python time per request, the costliest functions.

    What a gunicorn worker does for one request, minus the socket: the figures say where a request's
    time goes (issue #16: "profile a request first").
    """
    import cProfile
    import io
    import pstats

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from annotations.core.tokens import token_issue

    user = get_user_model().objects.get(username="bench0")
    secret = token_issue(user=user, name="profile")[1]
    client = Client(HTTP_AUTHORIZATION=f"Token {secret}")
    url = f"/api/campaigns/{campaign_id}/"
    sql = {"next": [0, 0.0], "submit": [0, 0.0]}
    which = ["next"]

    def timed(execute, statement, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            sql[which[0]][0] += 1
            sql[which[0]][1] += time.perf_counter() - t0

    def cycle() -> bool:
        which[0] = "next"
        response = client.post(url + "next/", {}, content_type="application/json", secure=True)
        item = response.json()["item"]
        if item is None:
            return False
        which[0] = "submit"
        response = client.post(
            url + "labels/", {"item": item["item"], "category": "answer"}, content_type="application/json",
            secure=True,
        )  # fmt: skip
        if response.status_code != 201:
            raise SystemExit(f"submit answered {response.status_code}: {response.content[:300]!r}")
        return True

    for _ in range(20):  # warm: imports, connection, caches
        cycle()
    done = 0
    profiler = cProfile.Profile()
    with connection.execute_wrapper(timed):
        started = time.perf_counter()
        profiler.enable()
        while done < requests and cycle():
            done += 1
        profiler.disable()
        elapsed = time.perf_counter() - started
    print(f"profile: {done} next -> submit cycles through the WSGI handler, token auth, in-process")
    print(f"   whole cycle {elapsed / done * 1000:.2f} ms (under cProfile, which slows Python about 1.5-2x)")
    for name, (count, seconds) in sql.items():
        print(f"   {name:<7} {count / done:.1f} queries, {seconds / done * 1000:.2f} ms in SQL per request")
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(45)
    print(stream.getvalue())
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(25)
    print(stream.getvalue())


def check_integrity(campaign_id: int) -> None:
    """No item above 3 labels, label_count equal to the label rows, nobody labelling an item twice."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """SELECT count(*) FILTER (WHERE n > 3), count(*) FILTER (WHERE n <> label_count)
               FROM (SELECT ci.id, ci.label_count, count(l.id) n FROM annotations_campaignitem ci
                     JOIN annotations_label l ON l.item_id = ci.id WHERE ci.campaign_id = %s
                     GROUP BY ci.id) t""",
            [campaign_id],
        )
        over, mismatch = cur.fetchone()
        cur.execute(
            """SELECT count(*) FROM (SELECT 1 FROM annotations_label GROUP BY item_id, annotator_id
               HAVING count(*) > 1) t"""
        )
        twice = cur.fetchone()[0]
        cur.execute(
            "SELECT status, count(*) FROM annotations_campaignitem WHERE campaign_id = %s GROUP BY status",
            [campaign_id],
        )
        statuses = dict(cur.fetchall())
    print(f"integrity: items over 3 labels {over}, count mismatches {mismatch}, labelled twice {twice}")
    print(f"item status: {statuses}")


def _phases(campaign_id: int, clients: list[int], args) -> None:
    if args.profile:
        run_profile(campaign_id, args.profile)
        return
    for n in clients:
        if args.via == "gunicorn":
            run_gunicorn_phase(campaign_id, n, args.workers, args.seconds, args.think)
        else:
            run_phase(campaign_id, n, min(n, args.workers), args.seconds, args.via)


def main() -> None:
    """Build, measure with each client count, check integrity, drop."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outputs", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="Duration of each phase.")
    parser.add_argument("--clients", default="1,16", help="Comma-separated numbers of concurrent annotators.")
    parser.add_argument(
        "--workers",
        type=int,
        default=2 * (os.cpu_count() or 1) + 1,
        help="Most worker processes serving the annotators (default 2 x cores + 1, gunicorn's advice).",
    )
    parser.add_argument("--via", choices=["service", "http", "gunicorn"], default="service")
    parser.add_argument("--think", type=float, default=3.0, help="--via gunicorn: seconds between steps.")
    parser.add_argument(
        "--server", default="postgres://postgres@127.0.0.1:5432/postgres", help="Any database on the server."
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N",
        help="Instead of the phases: N next -> submit cycles in-process under cProfile.",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="Keep the bench database afterwards.")
    parser.add_argument("--reuse", action="store_true", help="Time on the database a --keep run left.")
    args = parser.parse_args()
    clients = [int(n) for n in args.clients.split(",")]

    if args.reuse:
        os.environ["DATABASE_URL"] = database_url(args.server, DB_NAME)
    else:
        os.environ["DATABASE_URL"] = database_recreate(args.server, DB_NAME)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auditproject.settings")
    os.environ["DJANGO_LOG_LEVEL"] = "WARNING"
    # Production settings: DEBUG off (no query log), so the figures are a deployment's.
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "x" * 50)
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost")
    os.environ.setdefault("AUDIT_CACHE_URL", "redis://127.0.0.1:6379/12")  # shared cache, as docker-compose
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg_version = cur.fetchone()[0]
    python = platform.python_version()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; PostgreSQL {pg_version}; Python {python}")
    try:
        if args.reuse:
            from django.core.management import call_command

            from annotations.models import Campaign

            call_command("migrate", verbosity=0)  # the code under test may have added a migration
            campaign_id = Campaign.objects.get(name="bench").pk
        else:
            campaign_id = build(args.outputs, max(clients))
        _phases(campaign_id, clients, args)
        explain(campaign_id)
        check_integrity(campaign_id)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            database_drop(args.server, DB_NAME)


if __name__ == "__main__":
    main()
