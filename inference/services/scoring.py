"""Scorers and score runs: a scorer's configuration and version, starting a run and queueing its chunks.

A score run works like a generation run and shares its mechanism (inference.services.chunks): its
score rows exist (PENDING) before any task, one per output under the unique (scorer, version,
output); chunk tasks claim, fill and release them with conditional UPDATEs, so a redelivered
message, a resumed run or a killed worker never scores an output twice. Filling a chunk is
services/score_compute.py (which the Celery task imports, so this module and tasks.py do not
import each other).
"""

import hashlib
import json
import logging
import re

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError
from annotations.models import Campaign, LabelScheme
from inference.models import GenerationRun, ModelEndpoint, Output, Score, Scorer, ScoreRun
from inference.scorers import classifier as classifier_rules
from inference.scorers import judge as judge_rules
from inference.scorers import string_match
from inference.scorers.errors import ScorerConfigError
from inference.services.generation import ChunkReport, ProgressCallback
from inference.services.score_compute import score_run_status_refresh, scores_compute

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_CONFIG_BYTES = 200_000
BULK_BATCH = 5_000
# A chunk of string matching is pure CPU (about 10 us an output), so chunks are larger by default.
DEFAULT_CHUNK = {Scorer.Kind.STRING_MATCH: 5_000, Scorer.Kind.JUDGE: 256, Scorer.Kind.CLASSIFIER: 256}
MAX_CHUNK = 50_000
MAX_ATTEMPTS = 20


# --- Scorers -----------------------------------------------------------------------------------


def _scheme_keys(scheme: LabelScheme | None) -> list[str]:
    if scheme is None:
        return []
    return list(scheme.categories.order_by("order").values_list("key", flat=True))


def _scorer_field_errors(
    *, kind: str, scheme: LabelScheme | None, endpoint: ModelEndpoint | None
) -> list[dict]:
    """What is wrong with a scorer's scheme and endpoint for its kind."""
    errors: list[dict] = []
    needs_scheme = kind in (Scorer.Kind.STRING_MATCH, Scorer.Kind.JUDGE)
    if needs_scheme and scheme is None:
        errors.append({"field": "scheme", "message": f"A {kind} scorer assigns categories: choose a scheme."})
    needs_endpoint = kind in (Scorer.Kind.JUDGE, Scorer.Kind.CLASSIFIER)
    if needs_endpoint and endpoint is None:
        errors.append({"field": "endpoint", "message": f"A {kind} scorer calls a model: choose an endpoint."})
    if not needs_endpoint and endpoint is not None:
        errors.append({"field": "endpoint", "message": f"A {kind} scorer calls no model: leave it empty."})
    if endpoint is not None and needs_endpoint and not endpoint.base_urls:
        errors.append({"field": "endpoint", "message": f"Model {endpoint.name!r} has no base URL to call."})
    if kind == Scorer.Kind.JUDGE and endpoint is not None and endpoint.api_mode != ModelEndpoint.ApiMode.CHAT:
        errors.append(
            {"field": "endpoint", "message": f"A judge needs a chat endpoint; {endpoint.name!r} is not."}
        )
    return errors


def scorer_config_check(
    *, kind: str, scheme: LabelScheme | None, endpoint: ModelEndpoint | None, config: object
) -> dict:
    """The normalised configuration of a scorer, or AuditError naming each wrong field (`config.…`)."""
    if kind not in Scorer.Kind.values:
        raise AuditError(
            f"Unknown scorer kind {kind!r}; choose one of {', '.join(Scorer.Kind.values)}.",
            errors=[{"field": "kind", "message": f"Choose one of {', '.join(Scorer.Kind.values)}."}],
        )
    if not isinstance(config, dict):
        raise AuditError(
            "The configuration must be a JSON object.",
            errors=[{"field": "config", "message": "Give a JSON object."}],
        )
    if len(json.dumps(config)) > MAX_CONFIG_BYTES:
        raise AuditError(
            f"The configuration is larger than {MAX_CONFIG_BYTES:,} bytes.",
            errors=[{"field": "config", "message": f"At most {MAX_CONFIG_BYTES:,} bytes."}],
        )
    keys = _scheme_keys(scheme)
    errors = _scorer_field_errors(kind=kind, scheme=scheme, endpoint=endpoint)
    if errors:
        raise AuditError("The scorer is not valid: " + " ".join(e["message"] for e in errors), errors=errors)
    try:
        if kind == Scorer.Kind.STRING_MATCH:
            normalised = string_match.config_validate(config)
            for field in ("refusal_category", "otherwise_category"):
                if normalised[field] not in keys:
                    raise ScorerConfigError(
                        f"{field} {normalised[field]!r} is not a category of scheme {scheme.key!r}.",
                        errors=[{"field": field, "message": f"Choose one of {', '.join(keys)}."}],
                    )
            return normalised
        if kind == Scorer.Kind.JUDGE:
            return judge_rules.judge_config_validate(config, category_keys=keys)
        if kind == Scorer.Kind.CLASSIFIER:
            return classifier_rules.classifier_config_validate(config, category_keys=keys or None)
        if config:
            raise ScorerConfigError(
                "An imported scorer takes no configuration.",
                errors=[{"field": "", "message": "Leave the configuration empty."}],
            )
        return {}
    except ScorerConfigError as exc:
        raise AuditError(
            f"The scorer's configuration is not valid: {exc.message}",
            errors=[
                {"field": "config." + e["field"] if e.get("field") else "config", "message": e["message"]}
                for e in exc.errors
            ]
            or [{"field": "config", "message": exc.message}],
        ) from None


def scorer_version(
    *, kind: str, scheme: LabelScheme | None, endpoint: ModelEndpoint | None, config: dict
) -> str:
    """A 12-hex-digit hash of everything that decides a score: kind, the scheme's categories (keys,
    names, definitions), the model called (served name) and the normalised configuration."""
    categories = (
        list(scheme.categories.order_by("order").values_list("key", "name", "definition")) if scheme else []
    )
    identity = {
        "kind": kind,
        "scheme": scheme.key if scheme else None,
        "categories": categories,
        "model": endpoint.served_model_name if endpoint else None,
        "config": config,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]


def scorer_create(
    *,
    name: str,
    kind: str,
    scheme: LabelScheme | None = None,
    endpoint: ModelEndpoint | None = None,
    config: object = None,
    description: str = "",
    actor=None,
) -> Scorer:
    """Register a scorer after checking its name and configuration (AuditError naming the field)."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise AuditError(
            f"The scorer name {name!r} is not valid.",
            errors=[
                {"field": "name", "message": "1-64 letters, digits, - or _, starting with a letter or digit."}
            ],
        )
    if Scorer.objects.filter(name=name).exists():
        raise AuditError(
            f"A scorer named {name!r} exists.", errors=[{"field": "name", "message": "The name is taken."}]
        )
    config = scorer_config_check(kind=kind, scheme=scheme, endpoint=endpoint, config=config or {})
    with transaction.atomic():
        scorer = Scorer.objects.create(
            name=name,
            kind=kind,
            scheme=scheme,
            endpoint=endpoint,
            config=config,
            description=description[:5000],
            version=scorer_version(kind=kind, scheme=scheme, endpoint=endpoint, config=config),
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit_event_record(
            actor=actor,
            action="scorer.create",
            target=scorer,
            details={"kind": kind, "version": scorer.version},
        )
    return scorer


def scorer_update(
    *,
    scorer: Scorer,
    config: object = None,
    description: str | None = None,
    is_active: bool | None = None,
    actor=None,
) -> Scorer:
    """Change a scorer's configuration (a new version: old scores keep theirs), description or state."""
    with transaction.atomic():
        locked = Scorer.objects.select_for_update().get(pk=scorer.pk)
        if config is not None:
            locked.config = scorer_config_check(
                kind=locked.kind, scheme=locked.scheme, endpoint=locked.endpoint, config=config
            )
            locked.version = scorer_version(
                kind=locked.kind, scheme=locked.scheme, endpoint=locked.endpoint, config=locked.config
            )
        if description is not None:
            locked.description = description[:5000]
        if is_active is not None:
            locked.is_active = bool(is_active)
        locked.save()
        audit_event_record(
            actor=actor, action="scorer.update", target=locked, details={"version": locked.version}
        )
    scorer.refresh_from_db()
    return scorer


# --- Score runs --------------------------------------------------------------------------------


def _gold_examples(campaign: Campaign | None, limit: int) -> list[dict]:
    """Up to `limit` of the campaign's gold items as few-shot examples (fixed order: item id)."""
    if campaign is None or limit <= 0:
        return []
    rows = (
        campaign.items.filter(is_gold=True, gold_category__isnull=False)
        .order_by("pk")
        .values_list("prompt__text", "output__text", "gold_category__key")[:limit]
    )
    return [{"prompt": p, "output": o, "category_key": k} for p, o, k in rows]


def _target_outputs(*, generation_run: GenerationRun | None, campaign: Campaign | None):
    """The finished outputs a run scores: a generation run's done outputs, or a campaign's items."""
    if campaign is not None:
        return Output.objects.filter(campaign_items__campaign=campaign)
    return Output.objects.filter(run=generation_run, status=Output.Status.DONE)


def _unfinished_refuse(*, scorer: Scorer, scores) -> None:
    """Refuse a new start while some of `scores` are not DONE.

    An unfinished or failed score still belongs to its run: a new start would report it as scored
    (it is not) or score the output twice. Its own run finishes it, by resume or retry.
    """
    runs = list(
        scores.exclude(status=Score.Status.DONE)
        .values_list("run_id", flat=True)
        .distinct()
        .order_by("run_id")
    )
    if not runs:
        return
    named = ", ".join(f"#{pk}" for pk in runs[:5]) + (" ..." if len(runs) > 5 else "")
    message = (
        f"This version of {scorer.name!r} has unfinished or failed scores on this target in "
        f"score run {named}: resume or retry that run instead of starting a new one."
    )
    raise AuditError(
        "The score run cannot start: " + message, errors=[{"field": "scorer", "message": message}]
    )


def _score_run_check(
    *,
    scorer: Scorer,
    generation_run: GenerationRun | None,
    campaign: Campaign | None,
    chunk_size: int | None,
    max_attempts: int,
) -> int:
    """Refuse a score run that cannot start, naming every field at once; return the chunk size."""
    errors = []
    if (generation_run is None) == (campaign is None):
        errors.append({"field": "target", "message": "Give either a generation run or a campaign."})
    if scorer.kind == Scorer.Kind.IMPORTED:
        errors.append(
            {"field": "scorer", "message": f"{scorer.name!r} is an imported scorer: use import_scores."}
        )
    if not scorer.is_active:
        errors.append({"field": "scorer", "message": f"The scorer {scorer.name!r} is not active."})
    if campaign is not None and scorer.scheme_id and campaign.scheme_id != scorer.scheme_id:
        errors.append(
            {
                "field": "scorer",
                "message": f"{scorer.name!r} uses another label scheme than campaign {campaign}.",
            }
        )
    chunk_size = DEFAULT_CHUNK.get(scorer.kind, 256) if chunk_size is None else chunk_size
    if not 1 <= chunk_size <= MAX_CHUNK:
        errors.append({"field": "chunk_size", "message": f"The chunk size must be 1 to {MAX_CHUNK}."})
    if not 1 <= max_attempts <= MAX_ATTEMPTS:
        errors.append(
            {"field": "max_attempts", "message": f"Attempts per output must be 1 to {MAX_ATTEMPTS}."}
        )
    if scorer.endpoint is not None and not scorer.endpoint.is_active:
        errors.append({"field": "scorer", "message": f"Model {scorer.endpoint.name!r} is not active."})
    if errors:
        raise AuditError(
            "The score run cannot start: " + " ".join(e["message"] for e in errors), errors=errors
        )
    return chunk_size


def score_run_start(
    *,
    scorer: Scorer,
    generation_run: GenerationRun | None = None,
    campaign: Campaign | None = None,
    name: str = "",
    chunk_size: int | None = None,
    max_attempts: int = 5,
    actor=None,
    dispatch: bool = True,
) -> ScoreRun:
    """Create a score run and one PENDING score per target output this scorer version has not scored,
    then (if `dispatch`) queue the chunk tasks once the transaction commits."""
    chunk_size = _score_run_check(
        scorer=scorer,
        generation_run=generation_run,
        campaign=campaign,
        chunk_size=chunk_size,
        max_attempts=max_attempts,
    )
    config = dict(scorer.config)
    version = scorer.version
    examples = (
        _gold_examples(campaign, int(config.get("max_examples") or 0)) if scorer.kind == "judge" else []
    )
    if examples:
        # Few-shot examples come from the target campaign, so they are part of what decides a score.
        config["examples"] = examples
        version = hashlib.sha256(json.dumps([scorer.version, examples], sort_keys=True).encode()).hexdigest()[
            :12
        ]
    targets = _target_outputs(generation_run=generation_run, campaign=campaign)
    with transaction.atomic():
        # Locking the scorer row serialises two starts of the same scorer, so "already scored" is exact.
        Scorer.objects.select_for_update().filter(pk=scorer.pk).first()
        output_ids = list(targets.order_by("pk").values_list("pk", flat=True).distinct())
        if not output_ids:
            raise AuditError(
                "The score run cannot start: the target has no finished outputs.",
                errors=[{"field": "target", "message": "No finished outputs to score."}],
            )
        existing = Score.objects.filter(scorer=scorer, scorer_version=version, output_id__in=output_ids)
        _unfinished_refuse(scorer=scorer, scores=existing)
        scored = set(existing.values_list("output_id", flat=True))
        target_name = f"campaign {campaign}" if campaign is not None else f"run {generation_run}"
        run = ScoreRun.objects.create(
            name=(name or "").strip()[:200] or f"{scorer.name} on {target_name}"[:200],
            scorer=scorer,
            scorer_version=version,
            scorer_config=config,
            generation_run=generation_run,
            campaign=campaign,
            chunk_size=chunk_size,
            max_attempts=max_attempts,
            already_scored=len(scored),
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        Score.objects.bulk_create(
            (
                Score(run=run, scorer=scorer, scorer_version=version, output_id=pk)
                for pk in output_ids
                if pk not in scored
            ),
            batch_size=BULK_BATCH,
        )
        if len(scored) == len(output_ids):
            ScoreRun.objects.filter(pk=run.pk).update(
                status=ScoreRun.Status.COMPLETED, started_at=timezone.now(), finished_at=timezone.now()
            )
        audit_event_record(
            actor=actor,
            action="score_run.start",
            target=run,
            details={
                "scorer": scorer.name,
                "version": version,
                "target": target_name,
                "scores": len(output_ids) - len(scored),
                "already_scored": len(scored),
            },
        )
        if dispatch:
            score_run_dispatch(run=run)
    run.refresh_from_db()
    return run


def score_run_dispatch(*, run: ScoreRun, rows: Q | None = None) -> int:
    """Queue one chunk task per `chunk_size` pending scores (or scores matching `rows`: the sweeper's
    stranded ones), after the current transaction commits."""
    from inference.tasks import score_chunk

    chosen = run.scores.filter(rows if rows is not None else Q(status=Score.Status.PENDING))
    ids = list(chosen.order_by("pk").values_list("pk", flat=True))
    parts = [ids[i : i + run.chunk_size] for i in range(0, len(ids), run.chunk_size)]
    for part in parts:
        transaction.on_commit(lambda part=part: score_chunk.delay(run.pk, part))
    return len(parts)


def score_run_in_process(*, run: ScoreRun, on_progress: ProgressCallback | None = None) -> ChunkReport:
    """Score every pending output of `run` in this process, chunk after chunk (no broker needed)."""
    total = ChunkReport()
    ids = list(run.scores.filter(status=Score.Status.PENDING).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), run.chunk_size):
        report = scores_compute(
            run_id=run.pk, score_ids=ids[start : start + run.chunk_size], on_progress=on_progress
        )
        total.claimed += report.claimed
        total.done += report.done
        total.failed += report.failed
        total.cancelled += report.cancelled
        total.busy += report.busy
        if report.cancelled:
            break
    score_run_status_refresh(run_id=run.pk)
    return total
