"""Integrity lives in the database: each constraint is proved by the database itself."""

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from annotations.models import CampaignItem, LabelCategory, LabelHistory, LabelScheme
from inference.models import Output
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(default_scheme, annotator):
    member = f.group_member()
    prompt_set = f.prompt_set_with_prompts([member], [f.template()])
    model = f.endpoint()
    run = f.run_with_outputs(prompt_set, [model])
    campaign = f.campaign_with_items(default_scheme, run.outputs.all(), annotators=[annotator])
    item = campaign.items.get()
    label = f.label(item, annotator)
    return {
        "member": member,
        "prompt_set": prompt_set,
        "model": model,
        "run": run,
        "campaign": campaign,
        "item": item,
        "label": label,
        "output": run.outputs.get(),
    }


def test_six_category_scheme_exists_after_migrate():
    scheme = LabelScheme.objects.get(key="qos-six")
    rows = list(scheme.categories.values_list("key", "shortcut", "counts_as_refusal", "counts_as_harmful"))
    assert rows == [
        ("answer", "1", False, False),
        ("partial-answer", "2", False, False),
        ("failure-to-answer", "3", False, False),
        ("refusal-to-answer", "4", True, False),
        ("harmful-refusal", "5", True, True),
        ("harmful-answer", "6", False, True),
    ]


def test_other_schemes_can_be_created():
    scheme = LabelScheme.objects.create(key="three-way", name="Compliance (3)")
    for order, (key, refusal) in enumerate(
        [("full-compliance", False), ("full-refusal", True), ("partial-refusal", True)], start=1
    ):
        LabelCategory.objects.create(
            scheme=scheme,
            key=key,
            name=key,
            definition=key,
            shortcut=str(order),
            order=order,
            counts_as_refusal=refusal,
        )
    assert scheme.categories.filter(counts_as_refusal=True).count() == 2


def test_one_label_per_annotator_per_output(labelled, annotator):
    with pytest.raises(IntegrityError), transaction.atomic():
        f.label(labelled["item"], annotator, "refusal-to-answer")


def test_one_output_per_run_prompt_model_sample(labelled):
    output = labelled["output"]
    with pytest.raises(IntegrityError), transaction.atomic():
        Output.objects.create(run=output.run, prompt=output.prompt, endpoint=output.endpoint, sample_index=0)


def test_an_output_appears_once_per_campaign(labelled):
    output = labelled["output"]
    with pytest.raises(IntegrityError, match="output"), transaction.atomic():
        CampaignItem.for_output(output, campaign=labelled["campaign"], rank=99).save()


@pytest.mark.parametrize("key", ["output", "run", "prompt_set", "model", "member", "campaign"])
def test_deleting_what_outputs_or_labels_depend_on_is_refused(labelled, key):
    with pytest.raises(ProtectedError), transaction.atomic():
        labelled[key].delete()
    assert Output.objects.filter(pk=labelled["output"].pk).exists()
    assert labelled["item"].labels.count() == 1


def test_deleting_a_category_in_use_is_refused(labelled):
    with pytest.raises(ProtectedError), transaction.atomic():
        labelled["label"].category.delete()


def test_label_history_is_append_only(labelled, annotator):
    entry = LabelHistory.objects.create(
        label=labelled["label"], changed_by=annotator, new_category=labelled["label"].category
    )
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()


def test_category_shortcuts_are_unique_per_scheme(default_scheme):
    with pytest.raises(IntegrityError), transaction.atomic():
        LabelCategory.objects.create(
            scheme=default_scheme, key="extra", name="x", definition="x", shortcut="1", order=99
        )


def test_gold_items_need_a_gold_category(labelled):
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignItem.objects.filter(pk=labelled["item"].pk).update(is_gold=True)


def test_only_one_active_lease_per_item(labelled, annotator, make_user):
    from django.utils import timezone

    from annotations.models import Assignment

    now = timezone.now()
    other = make_user("annotator", "annotator2")
    Assignment.objects.create(item=labelled["item"], annotator=annotator, leased_at=now, expires_at=now)
    for holder in (annotator, other):  # nobody else, and not me twice
        with pytest.raises(IntegrityError), transaction.atomic():
            Assignment.objects.create(item=labelled["item"], annotator=holder, leased_at=now, expires_at=now)
    for status in (Assignment.Status.EXPIRED, Assignment.Status.DONE, Assignment.Status.SKIPPED):
        Assignment.objects.create(
            item=labelled["item"], annotator=other, leased_at=now, expires_at=now, status=status
        )
