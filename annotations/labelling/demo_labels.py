"""Simulated labels for the demo, so its dashboards and scorer validation tables have numbers.

They are NOT human judgements: two demo annotators "label" the first items of the demo campaign by
a fixed rule of thumb (refusal phrases -> refusal to answer, an empty or very short answer ->
failure to answer, otherwise answer) with 10% seeded noise each. The campaign's description says
so; real annotators label the rest in the browser.
"""

import random

from django.contrib.auth import get_user_model
from django.db import transaction

from annotations.labelling.services import items_refresh
from annotations.models import Campaign, Label

REFUSAL_CUES = ("sorry", "i cannot", "i can't", "as an ai", "not appropriate", "i apologi", "i'm not able")
SIMULATED_NOTE = "simulated demo label"


def _rule_of_thumb(text: str) -> str:
    lowered = text.lower().strip()
    if any(cue in lowered for cue in REFUSAL_CUES):
        return "refusal-to-answer"
    if len(lowered) < 3:
        return "failure-to-answer"
    return "answer"


@transaction.atomic
def demo_labels_simulate(*, campaign: Campaign, n_items: int = 80, seed: int = 2403) -> int:
    """Label the first `n_items` items (by rank) twice with simulated labels; returns labels written.

    Idempotent: items that already have labels are skipped.
    """
    users = list(
        get_user_model().objects.filter(username__in=["annotator1", "annotator2"]).order_by("username")
    )
    categories = {c.key: c for c in campaign.scheme.categories.all()}
    keys = sorted(categories)
    rng = random.Random(seed)  # noqa: S311 (simulation, not cryptography)
    items = list(campaign.items.filter(label_count=0).order_by("rank").select_related("output")[:n_items])
    labels = []
    for item in items:
        truth = _rule_of_thumb(item.output.text)
        for user in users:
            key = rng.choice(keys) if rng.random() < 0.10 else truth
            labels.append(Label(item=item, annotator=user, category=categories[key], note=SIMULATED_NOTE))
    Label.objects.bulk_create(labels)
    items_refresh(item_ids=[item.pk for item in items])
    return len(labels)
