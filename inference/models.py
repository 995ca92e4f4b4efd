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
