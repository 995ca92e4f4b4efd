"""Serializers of the inference API: they shape data; the services validate and write."""

from rest_framework import serializers

from annotations.models import PromptSet
from inference.models import GenerationRun, ModelEndpoint, Output
from inference.services.endpoints import ENDPOINT_FIELDS


class EndpointSerializer(serializers.ModelSerializer):
    """A model endpoint with its settings and last connection test."""

    class Meta:
        model = ModelEndpoint
        fields = ("id", *ENDPOINT_FIELDS, "last_check", "created_at")
        read_only_fields = ("id", "last_check", "created_at")
        # Uniqueness and ranges are checked by the service, which reports every problem at once.
        extra_kwargs = {"name": {"validators": []}}


class RunSerializer(serializers.ModelSerializer):
    """A run with its models and output counts (from the list selector's annotations)."""

    endpoints = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    prompt_set_name = serializers.CharField(source="prompt_set.__str__", read_only=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = GenerationRun
        fields = (
            "id",
            "name",
            "prompt_set",
            "prompt_set_name",
            "endpoints",
            "samples_per_prompt",
            "kind",
            "status",
            "chunk_size",
            "max_attempts",
            "created_at",
            "started_at",
            "finished_at",
            "counts",
        )

    def get_counts(self, run: GenerationRun) -> dict[str, int]:
        """Outputs per status."""
        counts = {status: getattr(run, f"n_{status}", None) for status in Output.Status.values}
        counts["total"] = getattr(run, "n_total", None)
        return counts


class RunStartSerializer(serializers.Serializer):
    """What starting a run takes."""

    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    prompt_set = serializers.PrimaryKeyRelatedField(queryset=PromptSet.objects.all())
    endpoints = serializers.PrimaryKeyRelatedField(queryset=ModelEndpoint.objects.all(), many=True)
    samples_per_prompt = serializers.IntegerField(default=3)
    chunk_size = serializers.IntegerField(default=256)
    max_attempts = serializers.IntegerField(default=5)


class OutputImportSerializer(serializers.Serializer):
    """An upload of outputs generated elsewhere."""

    prompt_set = serializers.PrimaryKeyRelatedField(queryset=PromptSet.objects.all())
    model_name = serializers.CharField(max_length=200)
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=["csv", "jsonl"], required=False)
    run_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class OutputSerializer(serializers.ModelSerializer):
    """One output with its provenance."""

    prompt_key = serializers.CharField(source="prompt.key", read_only=True)
    prompt_text = serializers.CharField(source="prompt.text", read_only=True)
    model = serializers.CharField(source="endpoint.name", read_only=True)

    class Meta:
        model = Output
        fields = (
            "id",
            "run",
            "prompt",
            "prompt_key",
            "prompt_text",
            "endpoint",
            "model",
            "sample_index",
            "status",
            "text",
            "finish_reason",
            "prompt_tokens",
            "completion_tokens",
            "latency_ms",
            "endpoint_snapshot",
            "request",
            "attempts",
            "last_error",
            "claimed_at",
            "started_at",
            "finished_at",
            "created_at",
        )
