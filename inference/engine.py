"""Sends a chunk of generation requests concurrently and hands back one result per request.

No Django here: the engine runs an asyncio loop in a background thread (the caller's thread keeps
the database connection and writes results as they arrive; see inference.services.generation).
Per endpoint, a semaphore keeps at most `concurrency` requests in flight and the replicas are used
in turn, so one worker keeps vLLM's continuous batching full. Transient failures are retried with
exponential backoff and jitter up to `max_attempts`; any other error fails the request at once.
"""

import asyncio
import contextlib
import itertools
import queue
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from inference.client import AsyncClient, Completion, EndpointError


@dataclass(frozen=True)
class EndpointConfig:
    """What the engine needs to know about one model endpoint."""

    id: int
    base_urls: tuple[str, ...]
    mode: str
    concurrency: int
    timeout: float
    served_model_name: str


@dataclass(frozen=True)
class Job:
    """One request to send: `key` identifies it to the caller (an output id)."""

    key: int
    endpoint: EndpointConfig
    body: dict


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per request and the exponential backoff between them (seconds)."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, *, retry_after: float | None = None, rng: random.Random) -> float:
        """Wait before attempt `attempt + 1`: base * 2**(attempt-1), halved at random ("equal jitter").

        A server's Retry-After is honoured (up to `max_delay`) when it asks for longer.
        """
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


@dataclass(frozen=True)
class JobResult:
    """The outcome of one job: a completion, or the last error after `attempts` tries."""

    key: int
    attempts: int
    completion: Completion | None
    error: str
    base_url: str
    model_id: str
    max_model_len: int | None
    finished_at: datetime


@dataclass
class _Replica:
    """A replica's /v1/models answer, fetched once per engine (again if it failed)."""

    model_id: str = ""
    max_model_len: int | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    known: bool = False


class Engine:
    """Runs jobs on an asyncio loop in a daemon thread; results arrive on `results` (None ends).

    Use: `engine.start()`, then read `engine.results` until None. `stop()` lets the requests in flight
    finish but starts no new one (no work the server has done is thrown away); `cancel()` abandons
    them too. Jobs that were not finished yield no result.
    """

    def __init__(self, jobs: Iterable[Job], policy: RetryPolicy, *, seed: int | None = None) -> None:
        self.jobs = list(jobs)
        self.policy = policy
        self.results: queue.Queue[JobResult | None] = queue.Queue()
        self._rng = random.Random(seed)  # noqa: S311 (jitter, not cryptography)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task | None = None
        self._ready = threading.Event()
        self._cancelled = False
        self._stopping = False
        self._thread = threading.Thread(target=self._thread_main, name="generation-engine", daemon=True)

    def start(self) -> None:
        """Start sending in the background."""
        self._thread.start()
        self._ready.wait()

    def stop(self) -> None:
        """Start no new request; the ones in flight finish and report their results."""
        self._stopping = True

    def cancel(self) -> None:
        """Stop sending: requests in flight are abandoned, queued ones never start."""
        self._cancelled = True
        if self._loop is not None and self._main is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._main.cancel)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background thread to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._run())
        finally:
            self._ready.set()
            self.results.put(None)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        self._ready.set()
        if self._cancelled:
            return
        endpoints = {job.endpoint.id: job.endpoint for job in self.jobs}
        self._semaphores = {pk: asyncio.Semaphore(ep.concurrency) for pk, ep in endpoints.items()}
        self._turns = {pk: itertools.cycle(ep.base_urls) for pk, ep in endpoints.items()}
        self._replicas = {url: _Replica() for ep in endpoints.values() for url in ep.base_urls}
        connections = sum(ep.concurrency for ep in endpoints.values()) + len(self._replicas)
        try:
            async with AsyncClient(max_connections=connections) as client:
                self._client = client
                await asyncio.gather(*(self._one(job) for job in self.jobs))
        except asyncio.CancelledError:
            return

    async def _replica_info(self, url: str, endpoint: EndpointConfig) -> _Replica:
        """The replica's reported model id (fetched on first use; left blank if /models fails)."""
        replica = self._replicas[url]
        if replica.known:
            return replica
        async with replica.lock:
            if not replica.known:
                try:
                    found = await self._client.models(url, timeout=min(endpoint.timeout, 10.0))
                except EndpointError:
                    return replica
                ids = found.model_ids
                replica.model_id = (
                    endpoint.served_model_name if endpoint.served_model_name in ids else ",".join(ids)
                )
                replica.max_model_len = found.max_model_len
                replica.known = True
        return replica

    async def _one(self, job: Job) -> None:
        endpoint = job.endpoint
        error = ""
        url = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            async with self._semaphores[endpoint.id]:
                if self._stopping:
                    return
                url = next(self._turns[endpoint.id])
                replica = await self._replica_info(url, endpoint)
                try:
                    completion = await self._client.complete(
                        base_url=url, mode=endpoint.mode, body=job.body, timeout=endpoint.timeout
                    )
                except EndpointError as exc:
                    error = exc.message
                    retryable, retry_after = exc.retryable, exc.retry_after
                else:
                    self._put(
                        job, attempts=attempt, completion=completion, error="", url=url, replica=replica
                    )
                    return
            if not retryable or attempt == self.policy.max_attempts:
                break
            await asyncio.sleep(self.policy.delay(attempt, retry_after=retry_after, rng=self._rng))
        message = f"{error} (after {attempt} attempt{'s' if attempt > 1 else ''})"
        self._put(
            job,
            attempts=attempt,
            completion=None,
            error=message,
            url=url,
            replica=self._replicas.get(url) or _Replica(),
        )

    def _put(
        self,
        job: Job,
        *,
        attempts: int,
        completion: Completion | None,
        error: str,
        url: str,
        replica: _Replica,
    ) -> None:
        self.results.put(
            JobResult(
                key=job.key,
                attempts=attempts,
                completion=completion,
                error=error,
                base_url=url,
                model_id=replica.model_id,
                max_model_len=replica.max_model_len,
                finished_at=datetime.now(UTC),
            )
        )
