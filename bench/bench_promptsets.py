"""Benchmark: import and expand templates x members into a prompt set, then time the prompt pages.

Default size: 500 templates x 200 members = 100,000 prompts (the issue's target: import + expand under
10 s and under 500 MB peak memory; prompt list page and API under 100 ms). Runs on a throw-away test
database that it creates, migrates and drops itself, so it never touches real data and needs no
migrated database: `bench_<name>` on the PostgreSQL server of DATABASE_URL (the database <name> need
not exist; the server's `postgres` database is used to create it), or, with DATABASE_URL unset,
`bench_audit.sqlite3` under AUDIT_DATA_DIR. The figures in docs/benchmarks.md are on PostgreSQL:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/audit_i3 .venv/bin/python bench/bench_promptsets.py
    ... --templates 50 --members 40      # smaller
    ... --tracemalloc                    # also report Python's traced peak (slower; a second figure)
    ... --keepdb                         # keep the test database afterwards

Memory is the process's peak resident set size (resource.getrusage ru_maxrss), printed as the absolute
peak and as the growth during import + expansion; `--tracemalloc` adds tracemalloc's peak of Python
allocations during the same step. Page times are the median of `--requests` requests with Django's
test client, logged in as a researcher (full middleware, template rendering and serialisation).
"""

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auditproject.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _files(templates: int, members: int, groups: int) -> tuple[bytes, bytes]:
    template_rows = ["key,text,slot,topic"] + [
        f"bench-{i:04d},{{name}} took part in bench sentence {i} and then [BLANK],name,topic {i % 17}"
        for i in range(templates)
    ]
    lines = ["axis,group,value,gender,popularity"]
    for i in range(members):
        gender = "woman" if i % 2 else "man"
        popularity = "rare" if i % 3 == 0 else "common"
        lines.append(f"bench,Group {i % groups:02d},Name{i:04d},{gender},{popularity}")
    return "\n".join(template_rows).encode(), "\n".join(lines).encode()


def _median_ms(client: Client, url: str, n: int) -> float:
    client.get(url)  # warm-up (connection, template loading)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=500)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--groups", type=int, default=8, help="The members are spread over this many groups.")
    parser.add_argument("--requests", type=int, default=20, help="Requests per timed page (median).")
    parser.add_argument("--tracemalloc", action="store_true", help="Also trace Python allocations (slower).")
    parser.add_argument("--keepdb", action="store_true", help="Keep the test database afterwards.")
    args = parser.parse_args()

    setup_test_environment()
    settings.DEBUG = False
    old_name = connection.settings_dict["NAME"]
    # apart from pytest's: `bench_audit` on PostgreSQL, `<AUDIT_DATA_DIR>/bench_audit.sqlite3` on SQLite
    test_name = Path(old_name).with_name(f"bench_{Path(old_name).name}")
    connection.settings_dict.setdefault("TEST", {})["NAME"] = str(test_name)
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        _run(args)
    finally:
        if not args.keepdb:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def _run(args) -> None:
    from annotations.core.users import user_create
    from annotations.library.promptsets import promptset_build
    from annotations.library.services import (
        group_import,
        group_upload_check,
        template_import,
        template_upload_check,
    )

    templates_csv, groups_csv = _files(args.templates, args.members, args.groups)
    expected = args.templates * args.members
    database = f"{connection.vendor} {connection.settings_dict['NAME']}"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"database: {database}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs; load average {load}"
    )
    print(f"size: {args.templates} templates x {args.members} members ({args.groups} groups) = {expected:,}")
    print(f"files: templates {len(templates_csv):,} bytes, groups {len(groups_csv):,} bytes (CSV)")

    rss_before = _rss_mb()
    if args.tracemalloc:
        tracemalloc.start()
    start = time.perf_counter()
    group_import(plan=group_upload_check(content=groups_csv, filename="groups.csv"), filename="bench")
    imported_groups = time.perf_counter()
    template_import(plan=template_upload_check(content=templates_csv, filename="t.csv"), filename="bench")
    imported_templates = time.perf_counter()
    prompt_set = promptset_build(name="bench", template_keys=["*"], group_refs=["bench/*"])
    built = time.perf_counter()
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
    tracemalloc.stop()
    rss_after = _rss_mb()
    count = prompt_set.prompts.count()
    assert count == expected, (count, expected)

    print(f"import groups:    {imported_groups - start:7.2f} s")
    print(f"import templates: {imported_templates - imported_groups:7.2f} s")
    print(f"expand + insert:  {built - imported_templates:7.2f} s  ({count:,} prompts)")
    traced = "  (with tracemalloc on)" if args.tracemalloc else ""
    print(f"TOTAL import + expand: {built - start:.2f} s{traced}")
    print(
        f"peak RSS (ru_maxrss): {rss_after:.0f} MB; growth during import + expand "
        f"{rss_after - rss_before:.0f} MB"
    )
    if traced_peak is not None:
        print(f"tracemalloc peak of Python allocations during import + expand: {traced_peak:.0f} MB")

    user = user_create(
        username="bench", role="researcher", password=os.urandom(16).hex(), validate_password=False
    )
    client = Client()
    client.force_login(user)
    pk = prompt_set.pk
    last_page = (count + 49) // 50
    pages = [
        ("prompt list page 1", f"/prompt-sets/{pk}/prompts/"),
        (f"prompt list page, last page ({last_page})", f"/prompt-sets/{pk}/prompts/?page={last_page}"),
        ("prompt list page, search 'sentence 42 '", f"/prompt-sets/{pk}/prompts/?q=sentence+42+"),
        ("prompt list page, one group", f"/prompt-sets/{pk}/prompts/?group=bench/group-03"),
        ("prompt list page, one template", f"/prompt-sets/{pk}/prompts/?template=bench-0042"),
        ("prompt set page (counts per group, template)", f"/prompt-sets/{pk}/"),
        ("prompt sets list page", "/prompt-sets/"),
        ("API prompts list page 1", f"/api/prompt-sets/{pk}/prompts/"),
        (f"API prompts list last page ({last_page})", f"/api/prompt-sets/{pk}/prompts/?page={last_page}"),
        ("API prompts search 'sentence 42 '", f"/api/prompt-sets/{pk}/prompts/?q=sentence+42+"),
        ("API prompts, one template", f"/api/prompt-sets/{pk}/prompts/?template=bench-0042"),
        ("API prompt set detail (with counts)", f"/api/prompt-sets/{pk}/"),
        ("API prompt sets list", "/api/prompt-sets/"),
    ]
    print(f"load average after import + expand: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"median of {args.requests} requests (Django test client, logged in):")
    for label, url in pages:
        print(f"  {label:<45} {_median_ms(client, url, args.requests):7.1f} ms")


if __name__ == "__main__":
    main()
