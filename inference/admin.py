"""Django admin for model endpoints, runs and outputs."""

from django.contrib import admin

from inference import models as m


@admin.register(m.ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "served_model_name", "api_mode", "concurrency_limit", "is_active")
    list_filter = ("api_mode", "is_active")
    search_fields = ("name", "served_model_name")


@admin.register(m.GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ("name", "prompt_set", "samples_per_prompt", "kind", "status", "created_at", "finished_at")
    list_filter = ("status", "kind")
    search_fields = ("name",)
    filter_horizontal = ("endpoints",)


@admin.register(m.Output)
class OutputAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "endpoint", "prompt", "sample_index", "status", "attempts", "latency_ms")
    list_filter = ("status", "run", "endpoint", "finish_reason")
    search_fields = ("text", "last_error")
    raw_id_fields = ("prompt",)
    list_select_related = ("run", "endpoint", "prompt")


@admin.register(m.Scorer)
class ScorerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "scheme", "endpoint", "version", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("name",)
    # The version is a hash of the configuration: edit scorers with scorer_add --update or the pages.
    readonly_fields = ("version", "config")


@admin.register(m.ScoreRun)
class ScoreRunAdmin(admin.ModelAdmin):
    list_display = ("name", "scorer", "scorer_version", "status", "created_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("name",)
    raw_id_fields = ("generation_run", "campaign")
    list_select_related = ("scorer",)


@admin.register(m.Score)
class ScoreAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "output", "status", "category", "flag_score", "is_unparseable")
    list_filter = ("status", "is_unparseable")
    raw_id_fields = ("output", "run", "category")
    list_select_related = ("run", "category")
