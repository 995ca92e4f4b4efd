"""A small hand-checkable campaign for the dashboard tests.

2 models x 2 templates x 3 members (Mohammed, Fatima: Muslim; John: White) = 12 outputs, labelled
by three annotators (two labels per output, third label on some). The labels are listed in
`LABELS` so the tests can recompute every number by hand or with an independent package.
"""

from annotations.labelling.services import items_refresh
from annotations.models import Adjudication, CampaignItem
from tests import factories

MODELS = ("llama-7b", "llama-13b")
MEMBERS = (("Mohammed", "Muslim"), ("Fatima", "Muslim"), ("John", "White"))
TEMPLATES = ("plane", "shop")
R, H, A, P = "refusal-to-answer", "harmful-refusal", "answer", "partial-answer"

# (model, template, member) -> labels of annotators ann1, ann2, ann3 (None = not labelled)
LABELS: dict[tuple[str, str, str], tuple[str | None, str | None, str | None]] = {
    ("llama-7b", "plane", "Mohammed"): (R, R, None),
    ("llama-7b", "plane", "Fatima"): (R, A, None),  # disputed: adjudicated to R below
    ("llama-7b", "plane", "John"): (A, A, None),
    ("llama-7b", "shop", "Mohammed"): (H, R, R),  # no unanimity; majority R
    ("llama-7b", "shop", "Fatima"): (A, A, None),
    ("llama-7b", "shop", "John"): (A, A, A),
    ("llama-13b", "plane", "Mohammed"): (R, None, R),
    ("llama-13b", "plane", "Fatima"): (A, None, A),
    ("llama-13b", "plane", "John"): (A, None, P),  # disputed, not adjudicated
    ("llama-13b", "shop", "Mohammed"): (None, R, R),
    ("llama-13b", "shop", "Fatima"): (None, A, A),
    ("llama-13b", "shop", "John"): (None, A, A),
}
ADJUDICATED = {("llama-7b", "plane", "Fatima"): R}


def build_campaign(scheme, make_user, *, final_rule: str = "adjudicate", suffix: str = ""):
    """Create the campaign, its labels and adjudication; returns (campaign, annotators, items by key).

    `suffix` is appended to template keys, model names and usernames so a test can build a second copy.
    """
    members = [factories.group_member(value, group) for value, group in MEMBERS]
    white = members[2].group
    white.is_control = True
    white.save(update_fields=["is_control"])
    templates = [factories.template(key + suffix) for key in TEMPLATES]
    prompt_set = factories.prompt_set_with_prompts(members, templates)
    endpoints = [factories.endpoint(name + suffix) for name in MODELS]
    run = factories.run_with_outputs(prompt_set, endpoints)
    annotators = [make_user("annotator", f"ann{i}{suffix}") for i in (1, 2, 3)]
    outputs = run.outputs.select_related("endpoint", "prompt__template", "prompt__member").order_by("id")
    campaign = factories.campaign_with_items(scheme, list(outputs), annotators=annotators)
    campaign.final_rule = final_rule
    campaign.save(update_fields=["final_rule"])
    items = {}
    for item in CampaignItem.objects.filter(campaign=campaign).select_related(
        "campaign__scheme", "output__endpoint", "output__prompt__template", "output__prompt__member"
    ):
        key = (
            item.output.endpoint.name.removesuffix(suffix),
            item.output.prompt.template.key.removesuffix(suffix),
            item.output.prompt.member.value,
        )
        items[key] = item
        for annotator, category in zip(annotators, LABELS[key], strict=True):
            if category is not None:
                factories.label(item, annotator, category)
    researcher = make_user("researcher", f"adjudicator{suffix}")
    for key, category in ADJUDICATED.items():
        Adjudication.objects.create(
            item=items[key],
            category=scheme.categories.get(key=category),
            adjudicator=researcher,
            reason="The answer declines.",
        )
    items_refresh(item_ids=[item.pk for item in items.values()])  # as item_adjudicate leaves them
    return campaign, annotators, items
