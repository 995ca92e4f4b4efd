"""HTML forms of scorers and score runs: they parse input; the scoring services validate and write."""

import json

from django import forms

from annotations.models import Campaign, LabelScheme
from inference.models import GenerationRun, ModelEndpoint, Scorer

CONTAINS_PREFIX = "contains:"
CONFIG_HELP = (
    'A JSON object. String match: {"preset": "xstest", "refusal_category": "refusal-to-answer", '
    '"otherwise_category": "answer"}, or "preset": null with "rules": [{"phrase": ..., "match": '
    '"starts_with" | "contains"}]. Judge and classifier: see docs/researchers.md. Imported: {}.'
)
PHRASES_HELP = (
    "String match only, optional: one phrase per line, in order (the first that matches wins); a line "
    f"starting with {CONTAINS_PREFIX!r} matches anywhere, others at the start. Given phrases replace "
    'the configuration\'s "rules" and its preset.'
)


def _config_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "code"}),
        label="Configuration (JSON)",
        help_text=CONFIG_HELP,
    )


def _phrases_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        label="Phrases, one per line",
        help_text=PHRASES_HELP,
    )


def phrases_from_rules(rules: list[dict]) -> str:
    """A string-match configuration's rules as the phrases textarea shows them."""
    return "\n".join(
        f"{CONTAINS_PREFIX} {rule['phrase']}" if rule.get("match") == "contains" else rule["phrase"]
        for rule in rules
    )


def rules_from_phrases(text: str) -> list[dict]:
    """The phrases textarea as string-match rules (blank lines are skipped)."""
    rules = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.lower().startswith(CONTAINS_PREFIX):
            rules.append({"phrase": line[len(CONTAINS_PREFIX) :].strip(), "match": "contains"})
        else:
            rules.append({"phrase": line.strip(), "match": "starts_with"})
    return rules


class _ConfigMixin:
    """The JSON configuration textarea, and the optional phrases that replace its rules."""

    def clean_config(self) -> dict:
        """The textarea as a JSON object (empty: {})."""
        text = (self.cleaned_data.get("config") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Give a JSON object: {...}.")
        return value

    def config_value(self, kind: str) -> dict:
        """The configuration to save: the JSON, with the phrases (if any) as its rules."""
        config = dict(self.cleaned_data["config"])
        phrases = self.cleaned_data.get("phrases") or ""
        if kind == Scorer.Kind.STRING_MATCH and phrases.strip():
            config["preset"] = None
            config["rules"] = rules_from_phrases(phrases)
        return config

    def uses_phrases(self) -> bool:
        """Whether the phrases textarea was filled in (its errors then belong to it)."""
        return bool((self.cleaned_data.get("phrases") or "").strip())


class ScorerForm(_ConfigMixin, forms.Form):
    """Register a scorer: its name, kind, scheme, model and configuration."""

    name = forms.CharField(
        max_length=64, help_text="Letters, digits, - and _; the export column is score_<name>."
    )
    kind = forms.ChoiceField(choices=Scorer.Kind.choices)
    scheme = forms.ModelChoiceField(
        queryset=LabelScheme.objects.order_by("name"),
        required=False,
        help_text="The categories it assigns (string match and judge need one).",
    )
    endpoint = forms.ModelChoiceField(
        queryset=ModelEndpoint.objects.order_by("name"),
        required=False,
        label="Model",
        help_text="The model a judge or classifier calls (empty for string match and imported).",
    )
    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    config = _config_field()
    phrases = _phrases_field()

    def values(self) -> dict:
        """The cleaned input as `scorer_create` takes it."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "kind": data["kind"],
            "scheme": data["scheme"],
            "endpoint": data["endpoint"],
            "description": data["description"],
            "config": self.config_value(data["kind"]),
        }


class ScorerEditForm(_ConfigMixin, forms.Form):
    """Change a scorer's configuration (a new version), description or state."""

    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))
    config = _config_field()
    phrases = _phrases_field()
    is_active = forms.BooleanField(required=False, help_text="Inactive scorers cannot start runs.")

    def __init__(self, *args, scorer: Scorer, **kwargs) -> None:
        self.scorer = scorer
        if not args and "initial" not in kwargs:
            config = dict(scorer.config)
            phrases = ""
            if scorer.kind == Scorer.Kind.STRING_MATCH and config.get("rules") and not config.get("preset"):
                phrases = phrases_from_rules(config.pop("rules"))
                config.pop("preset", None)
            kwargs["initial"] = {
                "description": scorer.description,
                "config": json.dumps(config, indent=2, ensure_ascii=False),
                "phrases": phrases,
                "is_active": scorer.is_active,
            }
        super().__init__(*args, **kwargs)
        if scorer.kind != Scorer.Kind.STRING_MATCH:
            del self.fields["phrases"]

    def values(self) -> dict:
        """The cleaned input as `scorer_update` takes it."""
        data = self.cleaned_data
        return {
            "description": data["description"],
            "config": self.config_value(self.scorer.kind),
            "is_active": data["is_active"],
        }


class ScoreRunStartForm(forms.Form):
    """Start a score run: a scorer applied to a generation run's done outputs or a campaign's items."""

    scorer = forms.ModelChoiceField(
        queryset=Scorer.objects.filter(is_active=True).exclude(kind=Scorer.Kind.IMPORTED).order_by("name")
    )
    generation_run = forms.ModelChoiceField(
        queryset=GenerationRun.objects.order_by("-created_at"),
        required=False,
        label="Generation run",
        help_text="Its done outputs. Choose a run or a campaign.",
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"),
        required=False,
        help_text="Its items' outputs (few-shot examples for a judge come from its gold items).",
    )
    name = forms.CharField(
        max_length=200, required=False, help_text="Empty: named after the scorer and the target."
    )
    chunk_size = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=50_000,
        help_text="Outputs per task; empty: 5000 for string match, else 256.",
    )
    max_attempts = forms.IntegerField(initial=5, min_value=1, max_value=20, help_text="Tries per output.")

    def clean(self) -> dict:
        """Exactly one target."""
        data = super().clean()
        if "generation_run" in self.errors or "campaign" in self.errors:
            return data
        if bool(data.get("generation_run")) == bool(data.get("campaign")):
            message = "Choose either a generation run or a campaign."
            self.add_error("generation_run", message)
            self.add_error("campaign", message)
        return data
