"""Serializers of the scorer and score-run API: they shape data; the scoring services validate and write."""

from rest_framework import serializers

from annotations.models import Campaign, LabelScheme
from inference.models import GenerationRun, ModelEndpoint, Score, Scorer, ScoreRun
from inference.services.score_compute import SCORE_RESULT_FIELDS


class ScorerSerializer(serializers.ModelSerializer):
    """A scorer with its configuration, version and the number of its runs."""

    scheme_key = serializers.CharField(source="scheme.key", read_only=True, allow_null=True, default=None)
    endpoint_name = serializers.CharField(
        source="endpoint.name", read_only=True, allow_null=True, default=None
    )
    n_runs = serializers.IntegerField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Scorer
        fields = (
            "id",
            "name",
            "kind",
            "description",
            "scheme",
            "scheme_key",
            "endpoint",
            "endpoint_name",
            "config",
            "version",
            "is_active",
            "n_runs",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class ScorerCreateSerializer(serializers.Serializer):
    """What registering a scorer takes (the service checks the name and the configuration)."""

    name = serializers.CharField(max_length=64)
    kind = serializers.ChoiceField(choices=Scorer.Kind.choices)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    scheme = serializers.PrimaryKeyRelatedField(
        queryset=LabelScheme.objects.all(), required=False, allow_null=True, default=None
    )
    endpoint = serializers.PrimaryKeyRelatedField(
        queryset=ModelEndpoint.objects.all(), required=False, allow_null=True, default=None
    )
    config = serializers.JSONField(required=False, default=dict)


class ScorerUpdateSerializer(serializers.Serializer):
    """What changing a scorer takes: a new configuration makes a new version; old scores keep theirs."""

    config = serializers.JSONField(required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    is_active = serializers.BooleanField(required=False)


class ScoreRunSerializer(serializers.ModelSerializer):
    """A score run with its scorer, target and score counts (from the list selector's annotations)."""

    scorer_name = serializers.CharField(source="scorer.name", read_only=True)
    run = serializers.PrimaryKeyRelatedField(source="generation_run", read_only=True, allow_null=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = ScoreRun
        fields = (
            "id",
            "name",
            "scorer",
            "scorer_name",
            "scorer_version",
            "scorer_config",
            "run",
            "campaign",
            "status",
            "chunk_size",
            "max_attempts",
            "already_scored",
            "created_at",
            "started_at",
            "finished_at",
            "counts",
        )
        read_only_fields = fields

    def get_counts(self, run: ScoreRun) -> dict[str, int]:
        """Scores per status, the total and the unparseable ones."""
        counts = {status: getattr(run, f"n_{status}", None) for status in Score.Status.values}
        counts["total"] = getattr(run, "n_total", None)
        counts["unparseable"] = getattr(run, "n_unparseable", None)
        return counts


class ScoreRunStartSerializer(serializers.Serializer):
    """What starting a score run takes: a scorer and either a generation run or a campaign."""

    scorer = serializers.PrimaryKeyRelatedField(queryset=Scorer.objects.all())
    run = serializers.PrimaryKeyRelatedField(
        queryset=GenerationRun.objects.all(), required=False, allow_null=True, default=None
    )
    campaign = serializers.PrimaryKeyRelatedField(
        queryset=Campaign.objects.all(), required=False, allow_null=True, default=None
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    chunk_size = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Empty: 5000 for string match, else 256."
    )
    max_attempts = serializers.IntegerField(required=False, default=5)

    def service_arguments(self) -> dict:
        """The validated data under the service's argument names."""
        data = dict(self.validated_data)
        data["generation_run"] = data.pop("run")
        return data


class ScoreSerializer(serializers.ModelSerializer):
    """One output's score: its category key, probabilities, flag, and how it went."""

    output = serializers.IntegerField(source="output_id", read_only=True)
    category = serializers.CharField(source="category.key", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Score
        fields = ("id", "output", "scorer_version", *SCORE_RESULT_FIELDS)  # what a chunk writes
        read_only_fields = fields
