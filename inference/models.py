"""Model endpoints, generation runs and their outputs.

Outputs are created (unique per run, prompt, endpoint and sample) before any task fills them; tasks
move them from PENDING with conditional UPDATEs, so a redelivered task message does nothing twice.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ModelEndpoint(models.Model):
    """A model served by one or more vLLM replicas behind the OpenAI-compatible API."""

    class ApiMode(models.TextChoices):
        CHAT = "chat", "Chat completions (system prompt + user turn)"
        COMPLETION = "completion", "Plain completions (base models)"

    name = models.CharField(max_length=200, unique=True, help_text="Display name, e.g. Llama-2-7b-chat.")
    base_urls = models.JSONField(
        default=list, blank=True, help_text="Replica base URLs, e.g. http://gpu1:8000/v1; empty for imports."
    )
    served_model_name = models.CharField(max_length=300, help_text="The `model` field sent to the server.")
    api_mode = models.CharField(max_length=16, choices=ApiMode.choices, default=ApiMode.CHAT)
    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField(default=1.0)
    top_p = models.FloatField(default=1.0)
    max_tokens = models.PositiveIntegerField(default=128)
    seed = models.BigIntegerField(null=True, blank=True)
    stop = models.JSONField(default=list, blank=True, help_text="Stop strings.")
    concurrency_limit = models.PositiveIntegerField(default=16, help_text="Requests in flight per worker.")
    request_timeout = models.FloatField(default=120.0, help_text="Seconds before one request times out.")
    is_active = models.BooleanField(default=True)
    last_check = models.JSONField(default=dict, blank=True, help_text="What /v1/models said last time.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(condition=Q(concurrency_limit__gte=1), name="endpoint_concurrency_min_1"),
            models.CheckConstraint(condition=Q(temperature__gte=0), name="endpoint_temperature_nonneg"),
            models.CheckConstraint(condition=Q(top_p__gt=0) & Q(top_p__lte=1), name="endpoint_top_p_range"),
        ]

    def __str__(self) -> str:
        return self.name


class GenerationRun(models.Model):
    """A prompt set sent to one or more models, `samples_per_prompt` times each."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Finished with failures"
        CANCELLED = "cancelled", "Cancelled"

    class Kind(models.TextChoices):
        GENERATED = "generated", "Generated here"
        IMPORTED = "imported", "Imported"

    name = models.CharField(max_length=200)
    prompt_set = models.ForeignKey("annotations.PromptSet", on_delete=models.PROTECT, related_name="runs")
    endpoints = models.ManyToManyField(ModelEndpoint, related_name="runs")
    samples_per_prompt = models.PositiveSmallIntegerField(default=3)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.GENERATED)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    chunk_size = models.PositiveIntegerField(default=256)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    swept_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweeper last queued this run's stranded rows again."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(condition=Q(samples_per_prompt__gte=1), name="run_samples_min_1"),
            models.CheckConstraint(condition=Q(chunk_size__gte=1), name="run_chunk_size_min_1"),
        ]

    def __str__(self) -> str:
        return self.name


class Output(models.Model):
    """One model answer to one prompt (one sample), with full provenance of the request."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    run = models.ForeignKey(GenerationRun, on_delete=models.PROTECT, related_name="outputs")
    prompt = models.ForeignKey("annotations.Prompt", on_delete=models.PROTECT, related_name="outputs")
    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.PROTECT, related_name="outputs")
    sample_index = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    text = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    endpoint_snapshot = models.JSONField(
        default=dict, blank=True, help_text="URL, served model name and the model id /v1/models reported."
    )
    request = models.JSONField(default=dict, blank=True, help_text="The exact body sent: messages or prompt.")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("run", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("run", "prompt", "endpoint", "sample_index"),
                name="output_unique_run_prompt_model_sample",
            )
        ]
        indexes = [models.Index(fields=("run", "status"), name="output_run_status_idx")]

    def __str__(self) -> str:
        return f"run {self.run_id} prompt {self.prompt_id} model {self.endpoint_id} #{self.sample_index}"


class Scorer(models.Model):
    """An automatic judgement of outputs: string match, an LLM judge, a classifier, or imported scores.

    `version` is a hash of everything that decides a score (kind, scheme, model, configuration), so
    scores made under changed settings never mix with old ones: each score carries the version it
    was made with, and one output has at most one score per scorer version.
    """

    class Kind(models.TextChoices):
        STRING_MATCH = "string_match", "String match"
        JUDGE = "judge", "LLM judge"
        CLASSIFIER = "classifier", "Classifier"
        IMPORTED = "imported", "Imported scores"

    name = models.CharField(
        max_length=64,
        unique=True,
        help_text="Letters, digits, - and _; names the export column score_<name>.",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.TextField(blank=True)
    scheme = models.ForeignKey(
        "annotations.LabelScheme",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="scorers",
        help_text="The label scheme whose categories the scorer assigns (empty for a flag-only classifier).",
    )
    endpoint = models.ForeignKey(
        ModelEndpoint,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="scorers",
        help_text="The model a judge or classifier calls.",
    )
    config = models.JSONField(default=dict, blank=True)
    version = models.CharField(max_length=16, help_text="Hash of kind, scheme, model and configuration.")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class ScoreRun(models.Model):
    """A scorer applied to the outputs of a generation run or of a campaign, one chunk task at a time.

    Imported scores arrive as a finished run with neither target (their outputs may span runs).
    """

    Status = GenerationRun.Status

    name = models.CharField(max_length=200)
    scorer = models.ForeignKey(Scorer, on_delete=models.PROTECT, related_name="runs")
    scorer_version = models.CharField(max_length=16)
    scorer_config = models.JSONField(
        default=dict, blank=True, help_text="The configuration as it was at start."
    )
    generation_run = models.ForeignKey(
        GenerationRun, null=True, blank=True, on_delete=models.PROTECT, related_name="score_runs"
    )
    campaign = models.ForeignKey(
        "annotations.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="score_runs"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    chunk_size = models.PositiveIntegerField(default=256)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    already_scored = models.PositiveIntegerField(
        default=0, help_text="Outputs of the target that this scorer version had scored before the run."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    swept_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweeper last queued this run's stranded rows again."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(generation_run__isnull=True) | Q(campaign__isnull=True),
                name="score_run_at_most_one_target",
            ),
            models.CheckConstraint(condition=Q(chunk_size__gte=1), name="score_run_chunk_size_min_1"),
        ]

    def __str__(self) -> str:
        return self.name


class Score(models.Model):
    """One scorer version's judgement of one output: a category and/or probabilities and/or a flag.

    The row exists (PENDING) before a task fills it, under the unique (scorer, version, output), and
    tasks move it with conditional UPDATEs, exactly like outputs. An answer that names no category
    of the scheme is DONE with `is_unparseable` set and no category: counted, never mapped.
    """

    Status = Output.Status

    run = models.ForeignKey(ScoreRun, on_delete=models.PROTECT, related_name="scores")
    scorer = models.ForeignKey(Scorer, on_delete=models.PROTECT, related_name="scores", db_index=False)
    scorer_version = models.CharField(max_length=16)
    output = models.ForeignKey(Output, on_delete=models.PROTECT, related_name="scores")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    category = models.ForeignKey(
        "annotations.LabelCategory", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    probabilities = models.JSONField(default=dict, blank=True, help_text="Category key -> probability.")
    flag_score = models.FloatField(null=True, blank=True, help_text="A classifier's score of its flag label.")
    is_flagged = models.BooleanField(null=True, blank=True)
    is_unparseable = models.BooleanField(default=False)
    raw = models.JSONField(default=dict, blank=True, help_text="What the scorer answered, as received.")
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("run", "id")
        constraints = [
            models.UniqueConstraint(
                fields=("scorer", "scorer_version", "output"), name="score_unique_scorer_version_output"
            )
        ]
        indexes = [models.Index(fields=("run", "status"), name="score_run_status_idx")]

    def __str__(self) -> str:
        return f"{self.scorer_id}@{self.scorer_version} output {self.output_id}"
