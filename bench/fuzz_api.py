"""Fuzz every API operation with many examples, as each role, over real HTTP; print what fails.

Run: .venv/bin/python bench/fuzz_api.py [--examples 200] [--roles admin,researcher,annotator]
         [--seed 1] [--phases examples,coverage,fuzzing,stateful] [--max-time SECONDS]
         [--server postgres://postgres@127.0.0.1:5432/postgres] [--keep]

Not part of the test suite: tests/api/test_schemathesis.py keeps a bounded, derandomised run (15 examples
per operation) there; this script spends a much larger budget to find what that run misses. It creates
(and at the end drops, unless --keep) its own PostgreSQL database `audit_fuzz`, migrates it, fills it with
a small labelled world (a prompt set, a run with outputs, a campaign with a label; the annotator is a
member), issues one API token per role, serves the project with gunicorn on a free loopback port and runs
schemathesis's CLI against /api/schema/ for each role with the `not_a_server_error` check (half of the
path ids are drawn from the rows that exist, so operations get past 404). It prints each role's summary,
then every distinct server error the server logged (path and exception), and exits 1 when anything
answered 5xx. Needs PostgreSQL at --server; Redis is not used.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import database_drop, database_recreate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent  # gunicorn and schemathesis from the same venv
DB_NAME = "audit_fuzz"
ROLES = ("admin", "researcher", "annotator")


def seed_world() -> tuple[dict[str, str], list[int]]:
    """Migrate, build a small labelled campaign; return an API token per role and the ids that exist."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from annotations.core.tokens import token_issue
    from annotations.core.users import user_create
    from annotations.models import LabelScheme
    from tests import factories

    users = {
        role: user_create(
            username=f"fuzz-{role}",
            role=role,
            password="fuzz-password",  # noqa: S106 - a throwaway database
            validate_password=False,
        )
        for role in ROLES
    }
    scheme = LabelScheme.objects.get(key="qos-six")
    members = [factories.group_member("Mohammed", "Muslim"), factories.group_member("Emily", "White")]
    prompt_set = factories.prompt_set_with_prompts(members, [factories.template(), factories.template()])
    run = factories.run_with_outputs(prompt_set, [factories.endpoint()])
    campaign = factories.campaign_with_items(scheme, list(run.outputs.all()))
    campaign.annotators.add(users["annotator"])
    factories.label(campaign.items.first(), users["annotator"])
    ids = [prompt_set.pk, run.pk, campaign.pk, *run.endpoints.values_list("pk", flat=True)]
    ids += list(campaign.items.values_list("pk", flat=True))
    return {role: token_issue(user=user)[1] for role, user in users.items()}, ids


def write_config(path: Path, ids: list[int]) -> Path:
    """A schemathesis config that draws half of the path ids from the rows that exist (the rest stay
    random), so the operations get past their 404s and into the code behind them."""
    values = ", ".join(str(i) for i in sorted(set(ids)))
    bindings = "\n".join(
        f'"path.{name}" = {{ dictionary = "ids", probability = 0.5 }}'
        for name in ("pk", "campaign_id", "item_id")
    )
    path.write_text(f"[dictionaries.ids]\nvalues = [{values}]\n\n[parameters]\n{bindings}\n")
    return path


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, token: str, seconds: float) -> None:
    """Poll `url` with `token` until it answers 200; SystemExit with the reason after `seconds`."""
    deadline = time.monotonic() + seconds
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})  # noqa: S310
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our loopback server
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"fuzz: the server did not answer {url} within {seconds:.0f} s")


_ERROR = re.compile(r"^Internal Server Error: (?P<path>\S+)")
_EXCEPTION = re.compile(r"^(?P<exc>[A-Za-z_][\w.]*(?:Error|Exception|Warning)\b.*)$")


def server_errors(log_text: str) -> dict[str, int]:
    """Distinct "path: exception" lines from Django's request log, with how often each was seen."""
    found: dict[str, int] = {}
    path = None
    for line in log_text.splitlines():
        match = _ERROR.match(line)
        if match:
            path = re.sub(r"/\d+/", "/{id}/", match["path"])
            continue
        if path is not None:
            exc = _EXCEPTION.match(line)
            if exc:
                key = f"{path}: {exc['exc'][:200]}"
                found[key] = found.get(key, 0) + 1
                path = None
    return found


def fuzz_role(role: str, token: str, *, base: str, config: Path, args, env: dict[str, str]) -> bool:
    """Run schemathesis as one role; print its summary; True when it found nothing."""
    command = [
        str(BIN / "schemathesis"), "--config-file", str(config), "run", f"{base}/api/schema/?format=json",
        "--url", base, "--header", f"Authorization: Token {token}",
        "--checks", "not_a_server_error", "--max-examples", str(args.examples),
        "--seed", str(args.seed), "--phases", args.phases, "--workers", "2",
        "--suppress-health-check", "all", "--continue-on-failure", "--no-color",
    ]  # fmt: skip
    if args.max_time:
        command += ["--max-time", str(args.max_time)]
    print(f"\n== fuzz as {role}: {args.examples} examples per operation, phases {args.phases} ==")
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    # From the failures (each with its reproducing curl command) if any, else from the summary.
    starts = [i for i, line in enumerate(lines) if "FAILURES" in line or "SUMMARY" in line]
    print("\n".join(lines[starts[0] if starts else max(len(lines) - 40, 0) :]))
    print(f"-- {role}: exit {result.returncode}, {time.monotonic() - started:.0f} s")
    return result.returncode == 0


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=200, help="examples per operation and phase")
    parser.add_argument("--roles", default=",".join(ROLES), help="comma-separated, of " + ", ".join(ROLES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--max-time", type=int, default=None, help="time budget per role, seconds")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the database audit_fuzz afterwards")
    args = parser.parse_args()
    args.roles = [role.strip() for role in args.roles.split(",") if role.strip()]
    unknown = sorted(set(args.roles) - set(ROLES))
    if unknown:
        parser.error(f"unknown role(s) {unknown}; choose from {', '.join(ROLES)}")
    return args


def main() -> int:
    """Build the world, serve it, fuzz it per role, report."""
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows up when the output goes to a file
    env = {
        **os.environ,
        "DATABASE_URL": database_recreate(args.server, DB_NAME),
        "DJANGO_SETTINGS_MODULE": "auditproject.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "fuzz-only-secret-key-fuzz-only-secret-key",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
        "AUDIT_DATA_DIR": tempfile.mkdtemp(prefix="audit-fuzz-"),
        "PYTHONPATH": str(REPO),
    }
    env.pop("CELERY_BROKER_URL", None)  # tasks run in-process: nothing is queued anywhere
    os.environ.update(env)
    tokens, ids = seed_world()
    config = write_config(Path(env["AUDIT_DATA_DIR"]) / "schemathesis.toml", ids)
    port = free_port()
    log_path = Path(env["AUDIT_DATA_DIR"]) / "gunicorn.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "auditproject.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "3"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.monotonic()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/api/schema/?format=json", tokens["admin"], 120)
        passed = [fuzz_role(r, tokens[r], base=base, config=config, args=args, env=env) for r in args.roles]
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    errors = server_errors(log_path.read_text(errors="replace"))
    print(f"\n== server errors logged: {sum(errors.values())} ({len(errors)} distinct) ==")
    for line, count in sorted(errors.items(), key=lambda item: -item[1]):
        print(f"{count:6d}  {line}")
    print(f"\nfuzz: {time.monotonic() - started:.0f} s in all; server log {log_path}")
    if not args.keep:
        database_drop(args.server, DB_NAME)
    return 0 if all(passed) and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
