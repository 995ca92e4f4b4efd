"""HTML forms of the inference app: they parse input; the services validate and write."""

from django import forms

from annotations.models import PromptSet
from inference.models import ModelEndpoint


class EndpointForm(forms.Form):
    """A model endpoint's settings (replica URLs and stop strings one per line)."""

    name = forms.CharField(max_length=200, help_text="Display name, e.g. Llama-2-7b-chat.")
    base_urls = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One replica per line, e.g. http://gpu1:8000/v1 (replicas of the same model).",
    )
    served_model_name = forms.CharField(max_length=300, help_text="The `model` field vLLM expects.")
    api_mode = forms.ChoiceField(choices=ModelEndpoint.ApiMode.choices)
    system_prompt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='Chat mode only, e.g. "You are a helpful assistant. Complete the [BLANK]."',
    )
    temperature = forms.FloatField(initial=1.0)
    top_p = forms.FloatField(initial=1.0)
    max_tokens = forms.IntegerField(initial=128)
    seed = forms.IntegerField(
        required=False, help_text="Sample i of a prompt is sent seed + i; empty: no seed."
    )
    stop = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Stop strings, one per line."
    )
    concurrency_limit = forms.IntegerField(initial=16, help_text="Requests in flight per worker.")
    request_timeout = forms.FloatField(initial=120.0, help_text="Seconds before one request times out.")
    is_active = forms.BooleanField(required=False, initial=True)

    @classmethod
    def for_endpoint(cls, endpoint: ModelEndpoint) -> "EndpointForm":
        """An unbound form showing `endpoint`'s settings."""
        initial = {name: getattr(endpoint, name) for name in cls.base_fields}
        initial["base_urls"] = "\n".join(endpoint.base_urls)
        initial["stop"] = "\n".join(endpoint.stop)
        return cls(initial=initial)

    def values(self) -> dict:
        """The cleaned settings as the services take them."""
        data = dict(self.cleaned_data)
        data["base_urls"] = [line.strip() for line in data["base_urls"].splitlines() if line.strip()]
        data["stop"] = [line for line in data["stop"].splitlines() if line]
        return data


class RunStartForm(forms.Form):
    """Start a generation run: a prompt set, models and samples per prompt."""

    name = forms.CharField(max_length=200, required=False, help_text="Empty: named after the set and models.")
    prompt_set = forms.ModelChoiceField(queryset=PromptSet.objects.order_by("name", "-version"))
    endpoints = forms.ModelMultipleChoiceField(
        queryset=ModelEndpoint.objects.filter(is_active=True).exclude(base_urls=[]).order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        label="Models",
    )
    samples_per_prompt = forms.IntegerField(
        initial=3, min_value=1, max_value=20, help_text="The study used 3."
    )
    chunk_size = forms.IntegerField(initial=256, min_value=1, max_value=10_000, help_text="Outputs per task.")
    max_attempts = forms.IntegerField(initial=5, min_value=1, max_value=20, help_text="Tries per output.")


class OutputImportForm(forms.Form):
    """Upload outputs generated elsewhere."""

    prompt_set = forms.ModelChoiceField(queryset=PromptSet.objects.order_by("name", "-version"))
    model_name = forms.CharField(max_length=200, help_text="The model the outputs come from.")
    file = forms.FileField(
        help_text="CSV or JSONL: prompt_key or prompt, output, [sample_index], [finish_reason]."
    )
    run_name = forms.CharField(max_length=200, required=False)
