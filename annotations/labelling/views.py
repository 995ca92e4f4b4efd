"""Campaign pages: list, create, edit, the campaign page with counts, labelling and adjudication."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from annotations.core.decorators import role_required
from annotations.core.exceptions import AuditError, NotFoundError
from annotations.core.roles import Role
from annotations.labelling.campaign_builder import label_scheme_categories
from annotations.labelling.campaigns import campaign_create, campaign_guidelines_default, campaign_update
from annotations.labelling.sampling_plans import DEFAULT_UNIFORM_SHARE, SAMPLING_FIELDS
from annotations.labelling.selectors import (
    adjudication_queue,
    campaign_annotator_stats,
    campaign_counts,
    campaign_for_annotator,
    campaign_for_researcher,
    campaign_list,
)
from annotations.labelling.services import item_adjudicate
from annotations.models import Campaign, Group, LabelScheme, PromptTemplate
from inference.models import GenerationRun, ModelEndpoint, Scorer


def _annotator_choices():
    return get_user_model().objects.filter(groups__name=Role.ANNOTATOR).order_by("username")


class ScorerChoiceField(forms.ModelChoiceField):
    """A scorer, shown with its kind, scheme and current version (the service decides which qualify)."""

    def label_from_instance(self, obj: Scorer) -> str:
        """E.g. "xstest (String match, qos-six, v 3f2a9c01d4e5)"."""
        state = "" if obj.is_active else ", inactive"
        scheme = obj.scheme.key if obj.scheme else "no scheme"
        return f"{obj.name} ({obj.get_kind_display()}, {scheme}, v {obj.version}{state})"


def _show_suggestions_field() -> forms.BooleanField:
    return forms.BooleanField(
        required=False,
        help_text="Annotators see the suggestion scorer's category for each output. Off (the default) they "
        "are blind to scores; on, the dashboard says the labels were made with suggestions shown.",
    )


def _suggestion_scorer_field() -> ScorerChoiceField:
    return ScorerChoiceField(
        Scorer.objects.select_related("scheme"),
        required=False,
        help_text="An active scorer of the campaign's label scheme that assigns categories; annotators see "
        "the scores of its current version.",
    )


class CampaignForm(forms.Form):
    """Create a campaign: which outputs, which scheme, how many labels each, by whom."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    scheme = forms.ModelChoiceField(LabelScheme.objects.all(), empty_label=None)
    # Checkbox lists post the same `runs=1&runs=2` as multi-selects; campaign_builder.js adds filters.
    runs = forms.ModelMultipleChoiceField(
        GenerationRun.objects.order_by("-created_at"), required=False, widget=forms.CheckboxSelectMultiple
    )
    models = forms.ModelMultipleChoiceField(
        ModelEndpoint.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    groups = forms.ModelMultipleChoiceField(
        Group.objects.select_related("axis"), required=False, widget=forms.CheckboxSelectMultiple
    )
    templates = forms.ModelMultipleChoiceField(
        PromptTemplate.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    sampling_plan = forms.TypedChoiceField(
        choices=Campaign.SamplingPlan.choices,
        required=False,
        empty_value=Campaign.SamplingPlan.ALL,
        initial=Campaign.SamplingPlan.ALL,
        label="Sampling plan",
        help_text="Which of the selected outputs humans label; fixed once the campaign exists. All: every "
        "one. Uniform: n at random (or a fraction). Stratified: n per model x group. Active: more often "
        "where the scorer is uncertain, every output possible, expected total = the budget (score first).",
    )
    sampling_budget = forms.IntegerField(
        min_value=1,
        required=False,
        label="Budget (n)",
        help_text="Uniform: how many outputs to draw. Active: the expected number drawn.",
    )
    sampling_fraction = forms.FloatField(
        required=False,
        label="Fraction",
        help_text="Uniform, instead of a budget: this share of the outputs (0-1].",
    )
    sampling_per_cell = forms.IntegerField(
        min_value=1,
        required=False,
        label="Outputs per model x group",
        help_text="Stratified: drawn in every cell (all of a smaller cell).",
    )
    sampling_scorer = ScorerChoiceField(
        Scorer.objects.select_related("scheme"),
        required=False,
        label="Sampling scorer",
        help_text="Active: the scorer whose uncertainty drives the draw; its current version must have "
        "scored every selected output with category probabilities.",
    )
    sampling_uniform_share = forms.FloatField(
        required=False,
        label="Uniform share",
        help_text=f"Active: the share mixed in uniformly so every output can be drawn (0-1], blank: "
        f"{DEFAULT_UNIFORM_SHARE}.",
    )
    labels_per_output = forms.IntegerField(min_value=1, max_value=20, initial=2)
    annotators = forms.ModelMultipleChoiceField(queryset=_annotator_choices(), required=False)
    show_model_name = forms.BooleanField(required=False, help_text="Annotators see which model answered.")
    show_suggestions = _show_suggestions_field()
    suggestion_scorer = _suggestion_scorer_field()
    final_rule = forms.ChoiceField(choices=Campaign.FinalRule.choices)
    lease_minutes = forms.IntegerField(min_value=1, max_value=1440, initial=30)
    guidelines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        help_text="Markdown. Left blank, the scheme's categories and definitions are used.",
    )
    gold = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Gold items, one per line: output id, category key (e.g. 1234,refusal-to-answer); "
        "the search below fills it.",
    )

    def clean_gold(self) -> list[dict]:
        """Parse `output id, category key` lines, naming the bad line."""
        rows = []
        for number, line in enumerate(self.cleaned_data["gold"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 2 or not parts[0].isdigit():
                raise forms.ValidationError(
                    f"Line {number}: expected 'output id, category key', got {line!r}."
                )
            rows.append({"output": int(parts[0]), "category": parts[1]})
        return rows


class CampaignEditForm(forms.Form):
    """Change a campaign's settings (its outputs and labels per output are fixed)."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    status = forms.ChoiceField(choices=Campaign.Status.choices)
    annotators = forms.ModelMultipleChoiceField(queryset=_annotator_choices(), required=False)
    show_model_name = forms.BooleanField(required=False)
    show_suggestions = _show_suggestions_field()
    suggestion_scorer = _suggestion_scorer_field()
    final_rule = forms.ChoiceField(choices=Campaign.FinalRule.choices)
    lease_minutes = forms.IntegerField(min_value=1, max_value=1440)
    guidelines = forms.CharField(widget=forms.Textarea(attrs={"rows": 10}), required=False)


def _form_errors(form: forms.Form, exc: AuditError) -> None:
    """The service's refusal on the form: each itemised error beside its field when the form has it."""
    lines = []
    for error in exc.errors:
        if error.get("field") in form.fields:
            form.add_error(error["field"], error.get("message"))
        else:
            lines.append(f"{error.get('field')}: {error.get('message')}")
    for line in [exc.message] + [line for line in lines if line != exc.message]:
        form.add_error(None, line)


@role_required("researcher")
def campaign_list_view(request: HttpRequest) -> HttpResponse:
    """Every campaign with its size."""
    return render(request, "annotations/campaign_list.html", {"campaigns": campaign_list(user=request.user)})


SELECTION_LISTS = ("runs", "models", "groups", "templates")  # rendered as filterable checkbox lists


@role_required("researcher")
def campaign_create_view(request: HttpRequest) -> HttpResponse:
    """The create form; the campaign and all its items are saved together or not at all."""
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        selection = {key: [obj.pk for obj in data[key]] for key in ("runs", "models", "groups", "templates")}
        selection = {key: ids for key, ids in selection.items() if ids}
        try:
            campaign = campaign_create(
                actor=request.user,
                name=data["name"],
                description=data["description"],
                scheme=data["scheme"],
                selection=selection,
                annotators=list(data["annotators"]),
                labels_per_output=data["labels_per_output"],
                show_model_name=data["show_model_name"],
                show_suggestions=data["show_suggestions"],
                suggestion_scorer=data["suggestion_scorer"],
                final_rule=data["final_rule"],
                lease_minutes=data["lease_minutes"],
                guidelines=data["guidelines"] or campaign_guidelines_default(scheme=data["scheme"]),
                gold=data["gold"],
                **{field: data[field] for field in SAMPLING_FIELDS},
            )
        except AuditError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Campaign {campaign.name!r} created.")
            return redirect("campaign-detail", campaign_id=campaign.pk)
    builder = {
        "lists": SELECTION_LISTS,
        "config": {
            "countUrl": reverse("api-campaign-selection-count"),
            "searchUrl": reverse("api-campaign-gold-search"),
            "categories": label_scheme_categories(),
        },
    }
    return render(
        request, "annotations/campaign_form.html", {"form": form, "title": "New campaign", "builder": builder}
    )


def _researcher_campaign(request: HttpRequest, campaign_id: int) -> Campaign:
    try:
        return campaign_for_researcher(user=request.user, campaign_id=campaign_id)
    except NotFoundError:
        raise Http404("No such campaign.") from None


@role_required("researcher")
def campaign_edit_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Edit settings and annotators."""
    campaign = _researcher_campaign(request, campaign_id)
    initial = {
        "name": campaign.name,
        "description": campaign.description,
        "status": campaign.status,
        "annotators": campaign.annotators.all(),
        "show_model_name": campaign.show_model_name,
        "show_suggestions": campaign.show_suggestions,
        "suggestion_scorer": campaign.suggestion_scorer_id,
        "final_rule": campaign.final_rule,
        "lease_minutes": campaign.lease_minutes,
        "guidelines": campaign.guidelines,
    }
    form = CampaignEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            campaign_update(
                actor=request.user, campaign=campaign, annotators=list(data.pop("annotators")), **data
            )
        except AuditError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Campaign saved.")
            return redirect("campaign-detail", campaign_id=campaign.pk)
    return render(
        request,
        "annotations/campaign_form.html",
        {"form": form, "title": f"Edit {campaign.name}", "campaign": campaign},
    )


@role_required("researcher")
def campaign_detail_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Counts by item status and, per annotator, labels done and accuracy on gold items."""
    campaign = _researcher_campaign(request, campaign_id)
    context = {
        "campaign": campaign,
        "counts": campaign_counts(campaign=campaign),
        "annotator_rows": campaign_annotator_stats(campaign=campaign),
        "can_adjudicate": request.user.has_perm("annotations.adjudicate_campaign"),
        "can_label": campaign.annotators.filter(pk=request.user.pk).exists(),
    }
    return render(request, "annotations/campaign_detail.html", context)


@role_required("annotator")
def campaign_label_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The labelling page; labelling.js drives it through the JSON API."""
    try:
        campaign = campaign_for_annotator(user=request.user, campaign_id=campaign_id)
    except NotFoundError:
        raise Http404("No such campaign.") from None
    except AuditError as exc:
        messages.error(request, exc.message)
        return redirect("home")
    categories = [
        {"key": c.key, "name": c.name, "definition": c.definition, "shortcut": c.shortcut}
        for c in campaign.scheme.categories.order_by("order")
    ]
    config = {
        "campaign": campaign.pk,
        "categories": categories,
        "api": reverse("api-campaign-list") + f"{campaign.pk}/",
        "showModel": campaign.show_model_name,
    }
    return render(
        request,
        "annotations/campaign_label.html",
        {"campaign": campaign, "categories": categories, "config": config},
    )


@role_required("researcher")
def campaign_adjudicate_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Disputed items with every label and note; each gets a final label with a reason."""
    if not request.user.has_perm("annotations.adjudicate_campaign"):
        raise PermissionDenied
    campaign = _researcher_campaign(request, campaign_id)
    if request.method == "POST":
        try:
            item_adjudicate(
                campaign=campaign,
                adjudicator=request.user,
                item_id=int(request.POST.get("item", "0") or 0),
                category_key=request.POST.get("category", ""),
                reason=request.POST.get("reason", ""),
            )
        except AuditError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Item {request.POST['item']} adjudicated.")
        return redirect(request.get_full_path())
    show_all = request.GET.get("all") == "1"
    page = Paginator(adjudication_queue(campaign=campaign, include_adjudicated=show_all), 20).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "annotations/campaign_adjudicate.html",
        {
            "campaign": campaign,
            "page": page,
            "show_all": show_all,
            "categories": campaign.scheme.categories.order_by("order"),
        },
    )
