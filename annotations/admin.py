"""Django admin for every model of the annotations app, with useful columns, filters and search."""

from django.contrib import admin

from annotations import models as m


class CategoryInline(admin.TabularInline):
    model = m.LabelCategory
    extra = 0


@admin.register(m.LabelScheme)
class LabelSchemeAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "created_at")
    search_fields = ("key", "name")
    inlines = (CategoryInline,)


@admin.register(m.LabelCategory)
class LabelCategoryAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "scheme", "order", "shortcut", "counts_as_refusal", "counts_as_harmful")
    list_filter = ("scheme", "counts_as_refusal", "counts_as_harmful")
    search_fields = ("key", "name", "definition")


@admin.register(m.GroupAxis)
class GroupAxisAdmin(admin.ModelAdmin):
    list_display = ("key", "name")
    search_fields = ("key", "name")


@admin.register(m.Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "axis", "is_control")
    list_filter = ("axis", "is_control")
    search_fields = ("name", "key")
    list_select_related = ("axis",)


@admin.register(m.GroupMember)
class GroupMemberAdmin(admin.ModelAdmin):
    list_display = ("value", "group", "attributes")
    list_filter = ("group__axis", "group")
    search_fields = ("value",)
    list_select_related = ("group", "group__axis")


@admin.register(m.PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ("key", "text", "slot", "topic", "target_group")
    list_filter = ("slot", "target_group")
    search_fields = ("key", "text", "topic")


@admin.register(m.PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "frozen_at", "created_by", "created_at")
    list_filter = ("frozen_at",)
    search_fields = ("name", "description")


@admin.register(m.Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("key", "text", "prompt_set", "group", "member")
    list_filter = ("prompt_set", "group")
    search_fields = ("key", "text")
    list_select_related = ("prompt_set", "group", "group__axis", "member")
    raw_id_fields = ("template", "member", "group", "prompt_set")


@admin.register(m.Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "scheme", "labels_per_output", "status", "show_model_name", "created_at")
    list_filter = ("status", "scheme", "show_model_name")
    search_fields = ("name", "description")
    filter_horizontal = ("annotators",)


@admin.register(m.CampaignItem)
class CampaignItemAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "output", "status", "label_count", "is_gold", "final_category")
    list_filter = ("campaign", "status", "is_gold")
    raw_id_fields = ("output", "gold_category", "final_category")
    # derived: the output's run, model and prompt, and the labels' summary (manage.py items_refresh)
    readonly_fields = ("run", "endpoint", "prompt", "label_pattern", "label_signature")
    list_select_related = ("campaign", "final_category", "final_category__scheme")


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Rows shown in the admin, never added, edited or deleted there (the subclass says why)."""

    def has_add_permission(self, request) -> bool:
        """Made elsewhere."""
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        """Changed elsewhere."""
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        """Kept."""
        return False


class _TallyAdmin(_ReadOnlyAdmin):
    """Tallies are kept by database triggers: shown, never edited here."""

    list_filter = ("campaign",)


@admin.register(m.CampaignItemTally)
class CampaignItemTallyAdmin(_TallyAdmin):
    list_display = ("campaign", "endpoint_id", "prompt_id", "final_category_id", "label_pattern", "n")


@admin.register(m.LabelSetTally)
class LabelSetTallyAdmin(_TallyAdmin):
    list_display = ("campaign", "endpoint_id", "group_id", "gold_category_id", "label_signature", "n")


@admin.register(m.ScoreTally)
class ScoreTallyAdmin(_TallyAdmin):
    list_display = ("campaign", "prompt_id", "final_category_id", "scorer_id", "scorer_version", "n")


@admin.register(m.CampaignFrameOutput)
class CampaignFrameOutputAdmin(_TallyAdmin):
    """A campaign's sampling frame: fixed when the campaign was created (the estimators need it unchanged)."""

    list_display = ("campaign", "output_id", "endpoint_id", "prompt_id", "inclusion_probability", "is_drawn")


@admin.register(m.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "item", "annotator", "status", "leased_at", "expires_at")
    list_filter = ("status",)
    search_fields = ("annotator__username",)
    raw_id_fields = ("item",)


@admin.register(m.Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ("id", "item", "annotator", "category", "active_seconds", "updated_at")
    list_filter = ("category__scheme", "category", "item__campaign")
    search_fields = ("annotator__username", "note")
    raw_id_fields = ("item",)
    list_select_related = ("annotator", "category", "category__scheme")


@admin.register(m.LabelHistory)
class LabelHistoryAdmin(admin.ModelAdmin):
    list_display = ("label", "changed_by", "changed_at", "old_category", "new_category")
    search_fields = ("changed_by__username",)
    raw_id_fields = ("label",)

    def has_change_permission(self, request, obj=None) -> bool:
        """History is append-only."""
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        """History is append-only."""
        return False


@admin.register(m.Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ("item", "category", "adjudicator", "created_at")
    search_fields = ("reason", "adjudicator__username")
    raw_id_fields = ("item",)


@admin.register(m.AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "target_type", "target_id")
    list_filter = ("action", "target_type")
    search_fields = ("action", "target_id", "actor__username")

    def has_change_permission(self, request, obj=None) -> bool:
        """The audit log is append-only."""
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        """The audit log is append-only."""
        return False


@admin.register(m.ApiToken)
class ApiTokenAdmin(_ReadOnlyAdmin):
    """API tokens: listed and revoked here, never made here (the secret is shown once where it is made:
    issue_token, /account/tokens/, POST /api/auth/token/) and never shown (only its digest is stored)."""

    list_display = ("user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = list_display
    exclude = ("digest",)
    actions = ("revoke",)

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        """Revoke through the service (audited)."""
        from annotations.core.tokens import token_revoke

        for token in queryset.filter(revoked_at=None):
            token_revoke(token_id=token.pk, actor=request.user)
        self.message_user(request, "Revoked.")
