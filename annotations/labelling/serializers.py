"""Shapes of the campaign and labelling API: what an annotator sees of an item, and the request and
response bodies (the services validate and write)."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from annotations.core.ids import MAX_ID
from annotations.core.markdown import markdown_to_safe_html
from annotations.labelling.sampling_plans import DEFAULT_UNIFORM_SHARE, SAMPLING_FIELDS, SAMPLING_FIXED
from annotations.labelling.services import MAX_ACTIVE_SECONDS, MAX_NOTE_CHARS, MAX_REASON_CHARS, Lease
from annotations.models import Campaign, Label, LabelScheme
from inference.models import Scorer


def item_payload(*, item_id: int, prompt: str, output: str, model: str, campaign: Campaign) -> dict:
    """What an annotator sees of an item: prompt and output as plain text, the model only if shown."""
    return {
        "item": item_id,
        "prompt": prompt,
        "output": output,
        "model": model if campaign.show_model_name else None,
    }


def lease_payload(*, lease: Lease, campaign: Campaign) -> dict:
    """The item of a lease; with suggestions on it carries `suggestion` (null when the scorer has none),
    with them off it has no such key at all."""
    payload = item_payload(
        item_id=lease.item_id, prompt=lease.prompt, output=lease.output, model=lease.model, campaign=campaign
    )
    if campaign.show_suggestions:
        payload["suggestion"] = lease.suggestion
    return payload


def label_payload(*, label: Label, campaign: Campaign) -> dict:
    """An item with my label on it, as shown when I go back to it (never with a suggestion)."""
    return {
        **item_payload(
            item_id=label.item_id,
            prompt=label.item.output.prompt.text,
            output=label.item.output.text,
            model=label.item.output.endpoint.name,
            campaign=campaign,
        ),
        "category": label.category.key,
        "note": label.note,
        "labelled_at": label.created_at,
        "changed_at": label.updated_at,
    }


class CampaignSerializer(serializers.ModelSerializer):
    """A campaign as researchers see it."""

    scheme = serializers.SlugRelatedField(slug_field="key", queryset=LabelScheme.objects.all())
    annotators = serializers.SlugRelatedField(
        slug_field="username", many=True, queryset=get_user_model().objects.all(), required=False
    )
    guidelines_html = serializers.SerializerMethodField()
    item_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Campaign
        fields = (
            "id",
            "name",
            "description",
            "scheme",
            "labels_per_output",
            "annotators",
            "show_model_name",
            "show_suggestions",
            "suggestion_scorer",
            "guidelines",
            "guidelines_html",
            "lease_minutes",
            "final_rule",
            "status",
            "selection",
            "seed",
            "sampling_plan",
            "sampling",
            "sampling_scorer",
            "item_count",
            "created_at",
        )
        read_only_fields = (
            "id",
            "selection",
            "seed",
            "sampling_plan",
            "sampling",
            "sampling_scorer",
            "created_at",
        )

    def get_guidelines_html(self, campaign: Campaign) -> str:
        """The guidelines rendered as sanitised HTML."""
        return str(markdown_to_safe_html(campaign.guidelines))


class AnnotatorCampaignSerializer(serializers.ModelSerializer):
    """A campaign as its annotators see it."""

    class Meta:
        model = Campaign
        fields = ("id", "name", "description", "labels_per_output")


class GoldSerializer(serializers.Serializer):
    """One gold item: an output with its known category."""

    output = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    category = serializers.CharField(max_length=64)


class SelectionSerializer(serializers.Serializer):
    """Which outputs (the population): every list given must match; `sample` N is the uniform plan of N."""

    runs = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False
    )
    models = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False
    )
    groups = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False
    )
    templates = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False
    )
    sample = serializers.IntegerField(
        min_value=1, required=False, help_text="Keep N at random: the uniform plan with sampling_budget N."
    )


class CampaignCreateSerializer(serializers.Serializer):
    """The body of POST /api/campaigns/."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    scheme = serializers.SlugRelatedField(slug_field="key", queryset=LabelScheme.objects.all())
    selection = SelectionSerializer()
    annotators = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, default=list
    )
    labels_per_output = serializers.IntegerField(min_value=1, max_value=20, default=2)
    show_model_name = serializers.BooleanField(default=False)
    show_suggestions = serializers.BooleanField(
        default=False, help_text="Annotators see the suggestion scorer's category (off: blind to scores)."
    )
    suggestion_scorer = serializers.PrimaryKeyRelatedField(
        queryset=Scorer.objects.all(), required=False, allow_null=True, default=None
    )
    guidelines = serializers.CharField(required=False, allow_blank=True, default="")
    lease_minutes = serializers.IntegerField(min_value=1, max_value=1440, default=30)
    final_rule = serializers.ChoiceField(
        choices=Campaign.FinalRule.choices, default=Campaign.FinalRule.ADJUDICATE
    )
    gold = GoldSerializer(many=True, required=False, default=list)
    seed = serializers.IntegerField(
        required=False, min_value=0, max_value=2**62, help_text="Seeds the item order and the plan's draw."
    )
    sampling_plan = serializers.ChoiceField(
        choices=Campaign.SamplingPlan.choices,
        default=Campaign.SamplingPlan.ALL,
        help_text="Which outputs of the selection humans label; fixed once the campaign exists.",
    )
    sampling_budget = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="uniform: n outputs (or give sampling_fraction); active: the expected number drawn.",
    )
    sampling_fraction = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        help_text="uniform: this share of the selection, 0 < f <= 1.",
    )
    sampling_per_cell = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="stratified: outputs per model x group."
    )
    sampling_scorer = serializers.PrimaryKeyRelatedField(
        queryset=Scorer.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="active: the scorer whose uncertainty drives the draw (scored every output already).",
    )
    sampling_uniform_share = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        help_text=f"active: the uniform floor's share, 0 < s <= 1 (default {DEFAULT_UNIFORM_SHARE}).",
    )


class CampaignUpdateSerializer(serializers.Serializer):
    """The body of PATCH /api/campaigns/{id}/ (every field optional)."""

    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    guidelines = serializers.CharField(required=False, allow_blank=True)
    annotators = serializers.ListField(child=serializers.CharField(max_length=150), required=False)
    show_model_name = serializers.BooleanField(required=False)
    show_suggestions = serializers.BooleanField(required=False)
    suggestion_scorer = serializers.PrimaryKeyRelatedField(
        queryset=Scorer.objects.all(), required=False, allow_null=True
    )
    lease_minutes = serializers.IntegerField(min_value=1, max_value=1440, required=False)
    final_rule = serializers.ChoiceField(choices=Campaign.FinalRule.choices, required=False)
    status = serializers.ChoiceField(choices=Campaign.Status.choices, required=False)

    def validate(self, attrs: dict) -> dict:
        """Refuse the sampling fields: the plan is fixed at creation (unknown keys are otherwise ignored)."""
        given = set(self.initial_data) if isinstance(self.initial_data, dict) else set()
        fixed = sorted(given & {*SAMPLING_FIELDS, "sampling"})
        if fixed:
            raise serializers.ValidationError({fixed[0]: SAMPLING_FIXED})
        return attrs


class NextSerializer(serializers.Serializer):
    """The body of POST next/: the item the page is showing, when it prefetches the following one."""

    after = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID)


class LabelSubmitSerializer(serializers.Serializer):
    """The body of POST labels/."""

    item = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    category = serializers.CharField(max_length=64)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_NOTE_CHARS)
    active_seconds = serializers.FloatField(min_value=0, max_value=MAX_ACTIVE_SECONDS, default=0)


class LabelChangeSerializer(serializers.Serializer):
    """The body of PATCH labels/{item}/."""

    category = serializers.CharField(max_length=64)
    note = serializers.CharField(required=False, allow_blank=True, max_length=MAX_NOTE_CHARS)
    active_seconds = serializers.FloatField(min_value=0, max_value=MAX_ACTIVE_SECONDS, default=0)


class SkipSerializer(serializers.Serializer):
    """The body of POST skip/."""

    item = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    reason = serializers.CharField(max_length=MAX_REASON_CHARS)


class AdjudicateSerializer(serializers.Serializer):
    """The body of POST adjudication/{item}/."""

    category = serializers.CharField(max_length=64)
    reason = serializers.CharField(max_length=MAX_NOTE_CHARS)


class ItemPayloadSerializer(serializers.Serializer):
    """What an annotator sees of an item (documentation of the responses)."""

    item = serializers.IntegerField()
    prompt = serializers.CharField()
    output = serializers.CharField()
    model = serializers.CharField(allow_null=True, help_text="Only when the campaign shows model names.")


class SuggestionSerializer(serializers.Serializer):
    """The suggestion scorer's category for an item (documentation of the responses)."""

    category = serializers.CharField(help_text="The category key.")
    category_name = serializers.CharField()
    probability = serializers.FloatField(allow_null=True, help_text="The score's probability, if it has one.")


class LeasedItemSerializer(ItemPayloadSerializer):
    """An item handed out to label (documentation of the responses)."""

    suggestion = SuggestionSerializer(
        allow_null=True,
        required=False,
        help_text="Only when the campaign shows suggestions (then null when its scorer has none).",
    )


class NextResponseSerializer(serializers.Serializer):
    """The answer of POST next/."""

    item = LeasedItemSerializer(allow_null=True)
    expires_at = serializers.DateTimeField(required=False)
    detail = serializers.CharField(required=False)


class MyLabelSerializer(ItemPayloadSerializer):
    """An item with my label on it."""

    category = serializers.CharField()
    note = serializers.CharField()
    labelled_at = serializers.DateTimeField()
    changed_at = serializers.DateTimeField()


class AdjudicationLabelSerializer(serializers.Serializer):
    """One annotator's label in the adjudication queue."""

    annotator = serializers.CharField()
    category = serializers.CharField()
    note = serializers.CharField()


class AdjudicationRowSerializer(serializers.Serializer):
    """A disputed item with every label and note."""

    item = serializers.IntegerField()
    status = serializers.CharField()
    prompt = serializers.CharField()
    output = serializers.CharField()
    model = serializers.CharField()
    labels = AdjudicationLabelSerializer(many=True)
    final_category = serializers.CharField(allow_null=True)
