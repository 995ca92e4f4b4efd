"""Small builders for test data; each returns saved rows with sensible defaults."""

import itertools

from django.utils import timezone

from annotations.labelling.services import items_refresh
from annotations.models import (
    Campaign,
    CampaignItem,
    Group,
    GroupAxis,
    GroupMember,
    Label,
    LabelScheme,
    Prompt,
    PromptSet,
    PromptTemplate,
)
from inference.models import GenerationRun, ModelEndpoint, Output

_seq = itertools.count(1)


def group_member(
    value: str = "Mohammed", group: str = "Muslim", axis: str = "name", **attributes
) -> GroupMember:
    """A member of a group on an axis (both created when missing)."""
    axis_row, _ = GroupAxis.objects.get_or_create(key=axis, defaults={"name": axis})
    group_row, _ = Group.objects.get_or_create(axis=axis_row, key=group.lower(), defaults={"name": group})
    member, _ = GroupMember.objects.get_or_create(
        group=group_row, value=value, defaults={"attributes": attributes}
    )
    return member


def template(key: str | None = None, text: str = "{name} got into the plane to [BLANK]") -> PromptTemplate:
    """A template with a {name} slot."""
    return PromptTemplate.objects.create(key=key or f"t{next(_seq)}", text=text, slot="name")


def prompt_set_with_prompts(
    members: list[GroupMember], templates: list[PromptTemplate], name: str | None = None
):
    """A prompt set crossing `templates` with `members` (in that order)."""
    prompt_set = PromptSet.objects.create(name=name or f"set-{next(_seq)}")
    position = 0
    for tpl in templates:
        for member in members:
            Prompt.objects.create(
                prompt_set=prompt_set,
                position=position,
                key=f"{tpl.key}:{member.group.key}:{member.value}",
                text=tpl.text.replace("{name}", member.value),
                template=tpl,
                group=member.group,
                member=member,
                attributes=member.attributes,
            )
            position += 1
    return prompt_set


def endpoint(name: str | None = None, base_urls: list[str] | None = None, **fields) -> ModelEndpoint:
    """A chat endpoint."""
    return ModelEndpoint.objects.create(
        name=name or f"model-{next(_seq)}",
        base_urls=base_urls or [],
        served_model_name=fields.pop("served", "m"),
        **fields,
    )


def run_with_outputs(
    prompt_set: PromptSet, endpoints: list[ModelEndpoint], samples: int = 1, *, text: str = "ok"
):
    """A run with one done output per prompt x endpoint x sample."""
    run = GenerationRun.objects.create(
        name=f"run-{next(_seq)}", prompt_set=prompt_set, samples_per_prompt=samples
    )
    run.endpoints.set(endpoints)
    outputs = [
        Output(
            run=run,
            prompt=prompt,
            endpoint=ep,
            sample_index=s,
            status=Output.Status.DONE,
            text=text,
            finished_at=timezone.now(),
        )
        for prompt in prompt_set.prompts.all()
        for ep in endpoints
        for s in range(samples)
    ]
    Output.objects.bulk_create(outputs)
    return run


def two_model_outputs() -> list[Output]:
    """Outputs of 2 templates x 2 names (Mohammed: Muslim, John: White) x 2 models, ordered by id."""
    members = [group_member("Mohammed"), group_member("John", group="White")]
    prompt_set = prompt_set_with_prompts(members, [template(), template()])
    run = run_with_outputs(prompt_set, [endpoint("llama-7b"), endpoint("llama-13b")])
    return list(run.outputs.order_by("pk"))


def campaign_with_items(
    scheme: LabelScheme, outputs, *, labels_per_output: int = 2, annotators=()
) -> Campaign:
    """A campaign over `outputs` with ranks in the given order."""
    campaign = Campaign.objects.create(
        name=f"campaign-{next(_seq)}", scheme=scheme, labels_per_output=labels_per_output
    )
    campaign.annotators.set(annotators)
    CampaignItem.objects.bulk_create(
        CampaignItem.for_output(output, campaign=campaign, rank=i) for i, output in enumerate(outputs)
    )
    return campaign


def label(item: CampaignItem, annotator, category_key: str = "answer") -> Label:
    """A label on `item` by `annotator` with the category of that key in the item's scheme.

    Written directly (no lease), then the item's count, summary and final label are refreshed from
    its labels as the labelling service would leave them.
    """
    category = item.campaign.scheme.categories.get(key=category_key)
    label = Label.objects.create(item=item, annotator=annotator, category=category)
    items_refresh(item_ids=[item.pk])
    item.refresh_from_db()
    return label
