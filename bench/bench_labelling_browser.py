"""Benchmark: in headless Chromium, the time from the keypress that submits a label to the next item shown.

Run: .venv/bin/python bench/bench_labelling_browser.py [--labels 40] [--database-url postgres://...]

Needs Chromium at /usr/bin/chromium (Debian's `chromium` package) and the dev extra (Playwright drives
it; no Playwright browser download). It migrates and fills a fresh database itself: a temporary SQLite
file, removed at the end, unless --database-url names a PostgreSQL database, which must exist and be
empty (`createdb -h 127.0.0.1 -U postgres NAME` first; it is left filled: `dropdb` it after). Then it
starts `manage.py runserver` on it, logs an annotator in and labels --labels outputs with the keyboard,
pausing like a person between items so the following item is prefetched. The page records
performance.now() at the keydown and at the next animation frame after the new item is in the DOM.
Goal: p95 under 100 ms.
"""

import argparse
import atexit
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-password-123"  # noqa: S105 (a throwaway bench user)


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_empty_database() -> None:
    """Exit with a message unless the database of --database-url exists and has no tables."""
    from django.db import OperationalError, connection

    try:
        tables = connection.introspection.table_names()
    except OperationalError as error:
        sys.exit(f"--database-url: {str(error).strip()}\n(create it first: createdb -h HOST -U USER NAME)")
    if tables:
        sys.exit(
            f"--database-url names a database with {len(tables)} tables; it must be empty "
            "(the bench migrates and fills it): dropdb and createdb it, or name a new one"
        )


def build(outputs: int) -> int:
    """Migrate; one annotator and a campaign of `outputs` outputs, one label each; its id."""
    from django.core.management import call_command

    from annotations.core.users import user_create
    from annotations.labelling.campaigns import campaign_create
    from annotations.models import LabelScheme
    from tests import factories

    call_command("migrate", verbosity=0)
    user_create(username="bench-annotator", role="annotator", password=PASSWORD, validate_password=False)
    members = [factories.group_member(f"Name{i}") for i in range(outputs // 4 + 1)]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template() for _ in range(4)])
    run = factories.run_with_outputs(
        prompt_set, [factories.endpoint()], text="got into the plane to visit her family in Lahore."
    )
    campaign = campaign_create(
        actor=None,
        name="browser bench",
        scheme=LabelScheme.objects.get(key="qos-six"),
        selection={"runs": [run.pk], "sample": outputs},
        annotators=["bench-annotator"],
        labels_per_output=1,
        seed=1,
    )
    return campaign.pk


def main() -> None:
    """Start the server, label with the keyboard, print p50/p95/max."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=40)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-browser-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # also when the build fails or exits early
    env = {**os.environ, "AUDIT_DATA_DIR": tmp, "DJANGO_LOG_LEVEL": "WARNING"}
    env.pop("DATABASE_URL", None)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auditproject.settings")
    import django

    django.setup()
    if args.database_url:
        check_empty_database()
    campaign_id = build(args.labels + 5)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        timings, wall = drive(base, campaign_id, args.labels)
    finally:
        server.terminate()
        server.wait(timeout=10)
    q = statistics.quantiles(timings, n=100, method="inclusive")
    engine = "PostgreSQL" if args.database_url else "SQLite"
    print(f"browser: Chromium headless ({CHROMIUM}), server: runserver on {engine}, {os.cpu_count()} cores")
    print(
        f"keypress -> next item shown, {len(timings)} submissions: p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, "
        f"max {max(timings):.1f} ms"
    )
    print(f"(seen from the test driver, incl. Playwright round trips: p50 {statistics.median(wall):.1f} ms)")


def drive(base: str, campaign_id: int, labels: int) -> tuple[list[float], list[float]]:
    """Log in and label `labels` items with the keyboard; (page timings, driver wall times) in ms."""
    from playwright.sync_api import sync_playwright

    wall: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{base}/login/")
        page.fill("#id_username", "bench-annotator")
        page.fill("#id_password", PASSWORD)
        page.press("#id_password", "Enter")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/campaigns/{campaign_id}/label/")
        page.wait_for_selector('#labelling[data-ready="1"]')
        for i in range(labels):
            page.wait_for_selector('#labelling[data-prefetched="1"]')
            page.wait_for_timeout(150)  # a person reads before answering; the prefetch has landed
            before = page.get_attribute("#labelling", "data-item")
            page.keyboard.press(str(1 + i % 6))
            started = time.perf_counter()
            page.keyboard.press("Enter")
            page.wait_for_function(f"document.getElementById('labelling').dataset.item !== '{before}'")
            wall.append((time.perf_counter() - started) * 1000)
        page.wait_for_timeout(100)
        timings = page.evaluate("window.labellingTimings")
        browser.close()
    return timings, wall


if __name__ == "__main__":
    main()
