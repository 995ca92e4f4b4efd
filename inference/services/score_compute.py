"""Filling a score run's chunk: claim its scores, score each output (string match in process, a judge
or classifier through the engine), write each result with a conditional UPDATE, release the rest.

The Celery task `inference.score_chunk` and `score_run_in_process` both call `scores_compute`; the
claim-and-fill rules are the ones of generation (services/chunks.py), so a redelivered message or
a killed worker never scores an output twice.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from inference.engine import EndpointConfig, Engine, Job, JobResult
from inference.models import Score, Scorer, ScoreRun
from inference.scorers import classifier as classifier_rules
from inference.scorers import judge as judge_rules
from inference.scorers import string_match
from inference.services import chunks
from inference.services.chunks import RowKind
from inference.services.generation import ChunkReport, ProgressCallback, clean_text, retry_policy

logger = logging.getLogger(__name__)

SCORE_RESULT_FIELDS = (
    "status",
    "category",
    "probabilities",
    "flag_score",
    "is_flagged",
    "is_unparseable",
    "raw",
    "attempts",
    "last_error",
    "latency_ms",
    "finished_at",
)
SCORE_ROWS = RowKind(model=Score, run_model=ScoreRun, result_fields=SCORE_RESULT_FIELDS)
RAW_TEXT_LIMIT = 4_000


def score_run_status_refresh(*, run_id: int) -> str | None:
    """Set the score run's status from its scores' statuses."""
    return chunks.run_status_refresh(kind=SCORE_ROWS, run_id=run_id)


# --- Filling a chunk ---------------------------------------------------------------------------


@dataclass
class _Item:
    """What scoring one output needs."""

    score_id: int
    attempts: int
    prompt: str
    text: str


class _ScoreChunk:
    """One chunk of a score run while it is filled: its claim token, rows, and what it still holds."""

    def __init__(self, *, run: ScoreRun, token: datetime, on_progress: ProgressCallback | None) -> None:
        self.run = run
        self.scorer = run.scorer
        self.config = run.scorer_config
        self.token = token
        self.on_progress = on_progress
        self.report = ChunkReport()
        self.held: set[int] = set()
        self.items: dict[int, _Item] = {}
        self.bodies: dict[int, dict] = {}
        scheme = self.scorer.scheme
        self.categories = (
            list(scheme.categories.order_by("order").values_list("key", "id", "name", "definition"))
            if scheme
            else []
        )
        self.category_ids = {key: pk for key, pk, _, _ in self.categories}

    def load(self) -> None:
        rows = (
            Score.objects.filter(run_id=self.run.pk, status=Score.Status.RUNNING, claimed_at=self.token)
            .order_by("pk")
            .values_list("pk", "attempts", "output__prompt__text", "output__text")
        )
        for pk, attempts, prompt, text in rows:
            self.items[pk] = _Item(pk, attempts, prompt or "", text or "")
            self.held.add(pk)
        self.report.claimed = len(self.items)

    def score(self, pk: int, **values) -> Score:
        """A result row for score `pk` (unset fields keep their defaults)."""
        item = self.items[pk]
        values.setdefault("status", Score.Status.DONE)
        values["attempts"] = item.attempts + values.pop("tries", 1)
        values.setdefault("finished_at", timezone.now())
        return Score(pk=pk, **values)

    def write(self, rows: list[Score]) -> None:
        """Write results of scores this chunk still holds, in one conditional UPDATE."""
        written = chunks.rows_write(kind=SCORE_ROWS, rows=rows, token=self.token)
        if written != len(rows):
            logger.warning("score run %s: %d results lost their claim", self.run.pk, len(rows) - written)
        done = sum(row.status == Score.Status.DONE for row in rows)
        failed = len(rows) - done
        for row in rows:
            self.held.discard(row.pk)
        self.report.done += done
        self.report.failed += failed
        if self.on_progress is not None:
            self.on_progress(done, failed)

    def heartbeat(self) -> None:
        self.token = chunks.rows_heartbeat(kind=SCORE_ROWS, ids=self.held, token=self.token)

    def release(self, *, status: str) -> int:
        count = chunks.rows_release(kind=SCORE_ROWS, ids=self.held, token=self.token, status=status)
        self.held.clear()
        return count

    # String match: computed here.
    def string_match(self) -> None:
        matcher = string_match.StringMatcher.from_config(self.config)
        pks = list(self.items)
        matches = matcher.score_many(
            [self.items[pk].text for pk in pks], [self.items[pk].prompt for pk in pks]
        )
        now = timezone.now()
        rows = [
            self.score(
                pk,
                category_id=self.category_ids[match.category_key],
                probabilities={},
                raw={"rule": match.rule_index, "phrase": match.phrase},
                finished_at=now,
            )
            for pk, match in zip(pks, matches, strict=True)
        ]
        for start in range(0, len(rows), chunks.MAX_WRITE_BATCH):
            self.write(rows[start : start + chunks.MAX_WRITE_BATCH])

    # Judges and classifiers: requests sent by the engine.
    def jobs(self) -> list[Job]:
        endpoint = self.scorer.endpoint
        mode = "chat" if self.scorer.kind == Scorer.Kind.JUDGE else "classify"
        config = EndpointConfig(
            id=endpoint.pk,
            base_urls=tuple(endpoint.base_urls),
            mode=mode,
            concurrency=endpoint.concurrency_limit,
            timeout=endpoint.request_timeout,
            served_model_name=endpoint.served_model_name,
        )
        if self.scorer.kind == Scorer.Kind.JUDGE:
            categories = [
                judge_rules.JudgeCategory(key, name, definition)
                for key, _, name, definition in self.categories
            ]
            examples = [
                judge_rules.JudgeExample(e["prompt"], e["output"], e["category_key"])
                for e in self.config.get("examples", [])
            ]
            build: Callable[[_Item], dict] = lambda item: judge_rules.judge_request_body(  # noqa: E731
                config=self.config,
                served_model_name=endpoint.served_model_name,
                categories=categories,
                examples=examples,
                prompt_text=item.prompt,
                output_text=item.text,
            )
        else:
            build = lambda item: classifier_rules.classifier_request_body(  # noqa: E731
                config=self.config,
                served_model_name=endpoint.served_model_name,
                prompt_text=item.prompt,
                output_text=item.text,
            )
        jobs = []
        for pk, item in self.items.items():
            self.bodies[pk] = build(item)
            jobs.append(Job(key=pk, endpoint=config, body=self.bodies[pk]))
        return jobs

    def write_results(self, results: list[JobResult]) -> None:
        rows = []
        for result in results:
            completion = result.completion
            if completion is None:
                rows.append(
                    self.score(
                        result.key,
                        status=Score.Status.FAILED,
                        tries=result.attempts,
                        last_error=clean_text(result.error),
                        raw={"url": result.base_url},
                        finished_at=result.finished_at,
                    )
                )
                continue
            raw = {
                "text": clean_text(completion.text)[:RAW_TEXT_LIMIT],
                "model": clean_text(completion.model),
                "url": result.base_url,
                "finish_reason": completion.finish_reason,
                **completion.extra,
            }
            if self.scorer.kind == Scorer.Kind.JUDGE:
                verdict = judge_rules.judge_parse(
                    text=completion.text,
                    logprobs=completion.extra.get("logprobs"),
                    category_keys=list(self.category_ids),
                )
                values = {"probabilities": verdict.probabilities}
            else:
                verdict = classifier_rules.classifier_parse(
                    probs=completion.extra.get("probs"),
                    label=completion.extra.get("label"),
                    labels=None,
                    config=self.config,
                )
                values = {
                    "probabilities": verdict.probabilities,
                    "flag_score": verdict.flag_score,
                    "is_flagged": verdict.is_flagged,
                }
            if verdict.is_unparseable:
                raw["unparseable"] = verdict.reason
            rows.append(
                self.score(
                    result.key,
                    tries=result.attempts,
                    category_id=self.category_ids.get(verdict.category_key) if verdict.category_key else None,
                    is_unparseable=verdict.is_unparseable,
                    raw=raw,
                    latency_ms=completion.latency_ms,
                    finished_at=result.finished_at,
                    **values,
                )
            )
        self.write(rows)


def scores_claim(*, run_id: int, score_ids: list[int]) -> datetime:
    """Claim the pending (or stale-running) scores among `score_ids`; return the claim's token."""
    return chunks.rows_claim(kind=SCORE_ROWS, run_id=run_id, ids=score_ids)


def scores_compute(
    *, run_id: int, score_ids: list[int], on_progress: ProgressCallback | None = None
) -> ChunkReport:
    """Fill the pending scores among `score_ids`; done ones and those a live worker holds are left alone."""
    run = ScoreRun.objects.select_related("scorer__endpoint", "scorer__scheme").filter(pk=run_id).first()
    if run is None or run.status == ScoreRun.Status.CANCELLED:
        return ChunkReport()
    chunk = _ScoreChunk(
        run=run, token=scores_claim(run_id=run_id, score_ids=score_ids), on_progress=on_progress
    )
    chunk.load()
    chunk.report.busy = chunks.rows_busy(kind=SCORE_ROWS, run_id=run_id, ids=score_ids, token=chunk.token)
    if not chunk.items:
        return chunk.report
    chunks.run_mark_started(kind=SCORE_ROWS, run_id=run_id)
    cancelled = False
    try:
        if run.scorer.kind == Scorer.Kind.STRING_MATCH:
            chunk.string_match()
        else:
            engine = Engine(chunk.jobs(), retry_policy(run=run))
            cancelled = chunks.engine_drive(
                kind=SCORE_ROWS,
                run_id=run_id,
                engine=engine,
                write=chunk.write_results,
                heartbeat=chunk.heartbeat,
            )
    finally:
        released = chunk.release(status=Score.Status.CANCELLED if cancelled else Score.Status.PENDING)
        if cancelled:
            chunk.report.cancelled = released
    return chunk.report
