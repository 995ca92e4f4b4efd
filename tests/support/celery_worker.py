"""Starting a real `celery worker` process: shared by the worker fixture, the kill tests and the bench."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def worker_command(queue: str, *, pool: str = "solo") -> list[str]:
    """The command line of a worker consuming only `queue` (prefork pools get one child)."""
    command = [
        sys.executable, "-m", "celery", "-A", "auditproject", "worker", "--pool", pool, "--loglevel", "INFO",
        "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    if pool == "prefork":
        command += ["--concurrency", "1"]
    return command


def worker_start(queue: str, log_path: Path, env: dict[str, str], *, pool: str = "solo") -> subprocess.Popen:
    """Start a worker in its own process group (so it can be stopped whole), logging to `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            worker_command(queue, pool=pool),
            cwd=REPO,
            env={**env, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def beat_start(log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `celery beat` (the sweeper's clock) in its own process group; its schedule file sits beside
    the log. It sends to the env's CELERY_TASK_DEFAULT_QUEUE, every INFERENCE_SWEEP_SECONDS."""
    command = [
        sys.executable, "-m", "celery", "-A", "auditproject", "beat", "--loglevel", "INFO",
        "--schedule", str(log_path.with_suffix(".schedule")),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            cwd=REPO,
            env={**env, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
