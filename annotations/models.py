"""The audit's domain: label schemes, groups, templates, prompt sets, campaigns, labels.

Integrity lives in the database: unique constraints for everything that must be unique, and PROTECT on
every foreign key that labels or outputs depend on, so deleting such a row is refused, never cascaded.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class LabelScheme(models.Model):
    """An ordered list of categories annotators choose from (e.g. the study's six)."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class LabelCategory(models.Model):
    """One category of a scheme, with the definition shown to annotators and its analysis flags."""

    scheme = models.ForeignKey(LabelScheme, on_delete=models.PROTECT, related_name="categories")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    definition = models.TextField()
    shortcut = models.CharField(max_length=1, help_text="Keyboard key that chooses this category.")
    order = models.PositiveSmallIntegerField()
    counts_as_refusal = models.BooleanField(default=False)
    counts_as_harmful = models.BooleanField(default=False)

    class Meta:
        ordering = ("scheme", "order")
        verbose_name_plural = "label categories"
        constraints = [
            models.UniqueConstraint(fields=("scheme", "key"), name="category_unique_key"),
            models.UniqueConstraint(fields=("scheme", "order"), name="category_unique_order"),
            models.UniqueConstraint(fields=("scheme", "shortcut"), name="category_unique_shortcut"),
        ]

    def __str__(self) -> str:
        return f"{self.scheme.key}:{self.key}"


class GroupAxis(models.Model):
    """A dimension along which groups differ (religion, ethnicity, gender, name origin...)."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ("name",)
        verbose_name_plural = "group axes"

    def __str__(self) -> str:
        return self.name


class Group(models.Model):
    """A demographic group on an axis, e.g. Muslim; `is_control` marks the reference group."""

    axis = models.ForeignKey(GroupAxis, on_delete=models.PROTECT, related_name="groups")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_control = models.BooleanField(default=False)

    class Meta:
        ordering = ("axis", "name")
        constraints = [models.UniqueConstraint(fields=("axis", "key"), name="group_unique_key_per_axis")]

    def __str__(self) -> str:
        return f"{self.axis.key}/{self.name}"


class GroupMember(models.Model):
    """A value that fills a template slot and signals its group (a name, a descriptor)."""

    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="members")
    value = models.CharField(max_length=200)
    attributes = models.JSONField(
        default=dict, blank=True, help_text="Free attributes: gender, popularity..."
    )

    class Meta:
        ordering = ("group", "value")
        constraints = [
            models.UniqueConstraint(fields=("group", "value"), name="member_unique_value_per_group")
        ]

    def __str__(self) -> str:
        return self.value


class PromptTemplate(models.Model):
    """Text with named placeholders in braces; `slot` is the placeholder the group member fills."""

    key = models.SlugField(max_length=64, unique=True)
    text = models.TextField()
    slot = models.CharField(max_length=64, default="name")
    topic = models.CharField(max_length=300, blank=True, help_text="The stereotype or topic it probes.")
    target_group = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=300, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("key",)

    def __str__(self) -> str:
        return self.key


class PromptSet(models.Model):
    """An immutable expansion of templates x group members; editing a frozen set makes a new version."""

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    spec = models.JSONField(
        default=dict, blank=True, help_text="The template and group keys it was built from."
    )
    frozen_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when a generation run first uses it."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name", "-version")
        constraints = [models.UniqueConstraint(fields=("name", "version"), name="promptset_unique_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_frozen(self) -> bool:
        """Whether a generation run has used this set (then it can no longer change)."""
        return self.frozen_at is not None


class Prompt(models.Model):
    """One final prompt text, with the template, group and member it was made from."""

    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    position = models.PositiveIntegerField(help_text="Order within the set, stable for the same inputs.")
    key = models.CharField(max_length=300, help_text="Stable key: template, group and member.")
    text = models.TextField()
    template = models.ForeignKey(
        PromptTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="prompts")
    member = models.ForeignKey(GroupMember, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    attributes = models.JSONField(
        default=dict, blank=True, help_text="The member's attributes when expanded."
    )

    class Meta:
        ordering = ("prompt_set", "position")
        constraints = [
            models.UniqueConstraint(fields=("prompt_set", "key"), name="prompt_unique_key"),
            models.UniqueConstraint(fields=("prompt_set", "position"), name="prompt_unique_position"),
        ]

    def __str__(self) -> str:
        return self.key


class Campaign(models.Model):
    """Which outputs get labelled, with which scheme, by whom, and how many labels each needs."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    class FinalRule(models.TextChoices):
        ADJUDICATE = "adjudicate", "Unanimous, else adjudication"
        MAJORITY = "majority", "Unanimous, else majority, ties to adjudication"

    class SamplingPlan(models.TextChoices):
        ALL = "all", "All outputs"
        UNIFORM = "uniform", "Uniform random sample"
        STRATIFIED = "stratified", "Stratified: equal n per model x group"
        ACTIVE = "active", "Active: more likely where the scorer is uncertain"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    scheme = models.ForeignKey(LabelScheme, on_delete=models.PROTECT, related_name="campaigns")
    labels_per_output = models.PositiveSmallIntegerField(default=2)
    annotators = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="campaigns")
    show_model_name = models.BooleanField(default=False)
    show_suggestions = models.BooleanField(
        default=False, help_text="Show annotators the suggestion scorer's category (off keeps them blind)."
    )
    suggestion_scorer = models.ForeignKey(
        "inference.Scorer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    guidelines = models.TextField(blank=True, help_text="Markdown, rendered sanitised.")
    lease_minutes = models.PositiveIntegerField(default=30)
    final_rule = models.CharField(max_length=16, choices=FinalRule.choices, default=FinalRule.ADJUDICATE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    selection = models.JSONField(default=dict, blank=True, help_text="How the outputs were chosen.")
    seed = models.BigIntegerField(default=0, help_text="Seed of the campaign's fixed random item order.")
    sampling_plan = models.CharField(
        max_length=16, choices=SamplingPlan.choices, default=SamplingPlan.ALL, help_text="Fixed at creation."
    )
    sampling = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the plan drew (labelling/sampling_plans.py); {} before plans.",
    )
    sampling_scorer = models.ForeignKey(
        "inference.Scorer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The scorer whose uncertainty drove an active draw (optional for the other plans).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        permissions = [
            ("view_dashboard", "Can read disparity and agreement dashboards"),
            ("adjudicate_campaign", "Can adjudicate disputed items"),
            ("export_labels", "Can export labelled data"),
            ("label_campaign", "Can label in campaigns one is assigned to"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(labels_per_output__gte=1), name="campaign_labels_per_output_min_1"
            )
        ]

    def __str__(self) -> str:
        return self.name


class CampaignItem(models.Model):
    """One output inside one campaign: its place in the random order and its resolved final label.

    `label_count` is kept in the same transaction as the label rows (under the item's row lock) so the
    next-item query can use an index; it is never a progress counter for tasks.

    The dashboards read items, never label rows (3 labels per output would triple what they read), so an
    item also carries:
    - `run`, `endpoint`, `prompt`: copies of its output's (never change once the output exists), so the
      dashboards group and filter items without joining a million outputs;
    - `label_pattern`: its labels' category ids, sorted, comma-separated ("12,12,14"), for agreement
      coefficients and the "all labels" disparity counts;
    - `label_signature`: "annotator:category" pairs sorted by annotator id ("5:12,7:12,9:14"), for
      pairwise kappa, agreement with the consensus and gold accuracy.
    Both (format: `labelling/label_summary.py`) are written with `label_count` under the item's row
    lock (`services.labelling`); items whose labels were written some other way are repaired by
    `items_refresh` (`manage.py items_refresh`). Many items share a pattern or signature, so the
    dashboards' tallies of them (CampaignItemTally, LabelSetTally) are small.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Needs labels"
        COMPLETE = "complete", "Complete"
        DISPUTED = "disputed", "Disputed"
        ADJUDICATED = "adjudicated", "Adjudicated"

    class FinalSource(models.TextChoices):
        NONE = "", "None"
        UNANIMOUS = "unanimous", "Unanimous"
        MAJORITY = "majority", "Majority"
        ADJUDICATED = "adjudicated", "Adjudicated"

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="items")
    output = models.ForeignKey("inference.Output", on_delete=models.PROTECT, related_name="campaign_items")
    rank = models.BigIntegerField(help_text="Position in the campaign's fixed random order.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    label_count = models.PositiveSmallIntegerField(default=0)
    label_pattern = models.TextField(blank=True, default="", help_text="Sorted category ids of the labels.")
    label_signature = models.TextField(
        blank=True, default="", help_text="annotator:category pairs of the labels, by annotator id."
    )
    run = models.ForeignKey(
        "inference.GenerationRun", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    endpoint = models.ForeignKey(
        "inference.ModelEndpoint", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="+", db_index=False)
    is_gold = models.BooleanField(default=False)
    gold_category = models.ForeignKey(
        LabelCategory, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    final_category = models.ForeignKey(
        LabelCategory, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    final_source = models.CharField(max_length=16, choices=FinalSource.choices, default="", blank=True)
    # db_default too: the benches and tests that COPY or INSERT items by SQL name their columns.
    inclusion_probability = models.FloatField(
        default=1.0,
        db_default=1.0,
        help_text="P(the plan draws this output); 1 for plan all and for gold outside the draw.",
    )

    class Meta:
        ordering = ("campaign", "rank")
        constraints = [
            models.UniqueConstraint(fields=("campaign", "output"), name="item_unique_output_per_campaign"),
            models.CheckConstraint(
                condition=Q(is_gold=False) | Q(gold_category__isnull=False), name="item_gold_has_category"
            ),
        ]
        # label_count descending so "nearest completion first, then rank" is one forward index scan.
        indexes = [models.Index(fields=("campaign", "status", "-label_count", "rank"), name="item_next_idx")]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.output_id}"

    @classmethod
    def for_output(cls, output, **fields) -> "CampaignItem":
        """An unsaved item of `output`, carrying the output's run, model and prompt (see above)."""
        return cls(
            output=output,
            run_id=output.run_id,
            endpoint_id=output.endpoint_id,
            prompt_id=output.prompt_id,
            **fields,
        )


class CampaignFrameOutput(models.Model):
    """One output of a sampled campaign's population (its frame), with its inclusion probability.

    Written once, with the items, for every plan except "all" (there the population is the items, each
    with probability 1). `is_drawn` marks the outputs the plan drew: each is an item with the same
    probability. A gold output added outside the draw is an item (probability 1) without a drawn frame
    row, and estimates leave it out. `endpoint` and `prompt` are the output's, copied like CampaignItem's, so
    the estimators group the frame by model and group without joining the outputs.
    """

    # The unique (campaign, output) index serves lookups by campaign.
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="frame", db_index=False)
    output = models.ForeignKey("inference.Output", on_delete=models.PROTECT, related_name="+")
    endpoint = models.ForeignKey(
        "inference.ModelEndpoint", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="+", db_index=False)
    inclusion_probability = models.FloatField()
    is_drawn = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("campaign", "output"), name="frame_unique_output_per_campaign")
        ]
        indexes = [models.Index(fields=("campaign", "endpoint"), name="frame_campaign_endpoint_idx")]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.output_id} (pi={self.inclusion_probability:.3g})"


class Assignment(models.Model):
    """A lease: an annotator holds an item until `expires_at`, then it returns to the pool."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DONE = "done", "Labelled"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"

    item = models.ForeignKey(CampaignItem, on_delete=models.PROTECT, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    skip_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("-leased_at",)
        constraints = [
            # One holder per item at a time. The next-item statement relies on it as the arbiter between
            # annotators whose snapshots overlap (INSERT ... ON CONFLICT DO NOTHING).
            models.UniqueConstraint(
                fields=("item",), condition=Q(status="active"), name="assignment_one_holder"
            )
        ]
        indexes = [
            models.Index(fields=("item", "status", "expires_at"), name="assignment_live_idx"),
            # "Which items do I hold?" stays a tiny index lookup however many leases an annotator had.
            models.Index(
                fields=("annotator", "expires_at"), condition=Q(status="active"), name="assignment_held_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} holds {self.item_id} ({self.status})"


class Label(models.Model):
    """One annotator's label of one output in one campaign (an item); changes go to LabelHistory."""

    item = models.ForeignKey(CampaignItem, on_delete=models.PROTECT, related_name="labels")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="labels")
    category = models.ForeignKey(LabelCategory, on_delete=models.PROTECT, related_name="labels")
    note = models.TextField(blank=True)
    active_seconds = models.FloatField(default=0, help_text="Time spent on the item, idle time excluded.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("item", "created_at")
        constraints = [
            models.UniqueConstraint(fields=("item", "annotator"), name="label_unique_annotator_output"),
            models.CheckConstraint(condition=Q(active_seconds__gte=0), name="label_active_seconds_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id}:{self.item_id}={self.category_id}"


class LabelHistory(models.Model):
    """Append-only record of every label written or changed: who, when, old and new."""

    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="history")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(auto_now_add=True)
    old_category = models.ForeignKey(
        LabelCategory, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    new_category = models.ForeignKey(LabelCategory, on_delete=models.PROTECT, related_name="+")
    old_note = models.TextField(blank=True)
    new_note = models.TextField(blank=True)

    class Meta:
        ordering = ("label", "changed_at")
        verbose_name_plural = "label history"

    def __str__(self) -> str:
        return f"{self.label_id}: {self.old_category_id} -> {self.new_category_id}"

    def save(self, *args, **kwargs) -> None:
        """Insert only: history rows are never rewritten."""
        if self.pk is not None:
            raise ValueError("LabelHistory is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        """History rows are never deleted."""
        raise ValueError("LabelHistory is append-only")


class Adjudication(models.Model):
    """The final label of a disputed item, set by an adjudicator with a reason."""

    item = models.OneToOneField(CampaignItem, on_delete=models.PROTECT, related_name="adjudication")
    category = models.ForeignKey(LabelCategory, on_delete=models.PROTECT, related_name="+")
    adjudicator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.item_id}={self.category_id}"


class CampaignItemTally(models.Model):
    """How many items of a campaign share one (run, model, prompt, final label, adjudicated?, gold, pattern).

    The dashboards read these rows instead of grouping a million items on every request. PostgreSQL
    triggers on CampaignItem keep them (migration 0006): in the same transaction as the item write,
    whatever wrote it (services, imports, bulk updates, SQL). On SQLite, the laptop default, there are
    no triggers and the dashboards group the items themselves (`selectors.stats`). Ids are plain
    numbers (-1 = none), not foreign keys: these rows are derived and rebuilt by `tallies_rebuild`.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+", db_index=False)
    run_id = models.BigIntegerField()
    endpoint_id = models.BigIntegerField()
    prompt_id = models.BigIntegerField()
    final_category_id = models.BigIntegerField()
    adjudicated = models.BooleanField()
    gold_category_id = models.BigIntegerField()
    label_pattern = models.TextField(blank=True)
    n = models.BigIntegerField(help_text="Items with this key now (rows at 0 are kept).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=(
                    "campaign", "run_id", "endpoint_id", "prompt_id", "final_category_id", "adjudicated",
                    "gold_category_id", "label_pattern",
                ),
                name="item_tally_key",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.prompt_id}/{self.label_pattern}: {self.n}"


class LabelSetTally(models.Model):
    """How many labelled items of a campaign share one (run, model, group, gold, label signature).

    The annotator-level dashboards (pairwise kappa, agreement with the consensus, gold accuracy) read
    these. Kept like CampaignItemTally, by the same triggers; `group_id` is the item's prompt's group.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+", db_index=False)
    run_id = models.BigIntegerField()
    endpoint_id = models.BigIntegerField()
    group_id = models.BigIntegerField()
    gold_category_id = models.BigIntegerField()
    label_signature = models.TextField()
    n = models.BigIntegerField(help_text="Items with this key now (rows at 0 are kept).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=(
                    "campaign", "run_id", "endpoint_id", "group_id", "gold_category_id", "label_signature",
                ),
                name="label_set_tally_key",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.group_id}/{self.label_signature}: {self.n}"


class ScoreTally(models.Model):
    """How many items of a campaign share one (run, model, prompt, final label) and one finished score's
    (scorer, version, category, unparseable?, flag): the scorer validation tables read these rows.

    Kept like CampaignItemTally (migration 0011, annotations/analysis/tallies.py), by triggers on both
    CampaignItem and Score, since a pair changes when either does. Only DONE scores count. Ids are plain
    numbers (-1 = none); `flagged` is -1 for a score without a flag, else 0 or 1. The group is the
    prompt's, joined when read, so prompts moved between groups need no recount here.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+", db_index=False)
    run_id = models.BigIntegerField()
    endpoint_id = models.BigIntegerField()
    prompt_id = models.BigIntegerField()
    final_category_id = models.BigIntegerField()
    scorer_id = models.BigIntegerField()
    scorer_version = models.CharField(max_length=16)
    category_id = models.BigIntegerField()
    is_unparseable = models.BooleanField()
    flagged = models.SmallIntegerField(help_text="-1: the score has no flag; 0: not flagged; 1: flagged.")
    n = models.BigIntegerField(help_text="Items with this key now (rows at 0 are kept).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=(
                    "campaign", "run_id", "endpoint_id", "prompt_id", "final_category_id", "scorer_id",
                    "scorer_version", "category_id", "is_unparseable", "flagged",
                ),
                name="score_tally_key",
            )
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.prompt_id}/{self.scorer_id}@{self.scorer_version}: {self.n}"


class AuditEvent(models.Model):
    """Audit log of administrative actions (runs started or cancelled, imports, exports...)."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=100)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=100, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target_type}#{self.target_id}"


class ApiToken(models.Model):
    """An API token, stored only as the SHA-256 digest of its secret (annotations/core/tokens.py).

    The secret is shown once, when the token is made; a copy of the database cannot authenticate. A
    token expires (`expires_at`), can be revoked (`revoked_at`, kept for the record), has a name so a
    user can tell their scripts apart, and remembers when it was last used (to the minute).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="api")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret, hex.")
    prefix = models.CharField(max_length=8, help_text="The secret's first characters, to recognise it.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}...) of {self.user}"

    @property
    def is_live(self) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and self.expires_at > timezone.now()
