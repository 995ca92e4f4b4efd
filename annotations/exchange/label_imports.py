"""Import of an already-labelled dataset (another tool's export, a benchmark's human labels).

One row per label: the prompt text, the model, the output text, the annotator and the label (category
key or name), with an optional note, sample index and metadata columns mapped to a group axis, a group
member, a template and free attributes. Everything is validated first and every problem is reported
with its row (the line in the file); then everything is written in one transaction, or nothing.
"""

import hashlib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError
from annotations.core.roles import Role, roles_sync
from annotations.labelling.final_label import item_outcome
from annotations.labelling.label_summary import label_summary
from annotations.models import (
    Campaign,
    CampaignItem,
    Group,
    GroupAxis,
    GroupMember,
    Label,
    LabelCategory,
    LabelHistory,
    LabelScheme,
    Prompt,
    PromptSet,
    PromptTemplate,
)
from inference.models import GenerationRun, ModelEndpoint, Output

MAX_ERRORS = 50
_USERNAME = re.compile(r"^[\w.@+-]{1,150}$")
_CATEGORY_FLAGS = {"refusal", "harmful"}


@dataclass(frozen=True)
class CategorySpec:
    """A category declared in the import: key, name and analysis flags."""

    key: str
    name: str
    counts_as_refusal: bool = False
    counts_as_harmful: bool = False


@dataclass(frozen=True)
class ImportMapping:
    """Which columns hold what; column names are matched exactly."""

    prompt_column: str = "prompt"
    model_column: str = "model"
    output_column: str = "output"
    annotator_column: str = "annotator"
    label_column: str = "label"
    note_column: str = "note"
    sample_column: str = "sample"
    group_column: str = ""
    axis: str = ""
    member_column: str = ""
    template_column: str = ""
    attribute_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    """What an import created."""

    campaign_id: int
    prompt_set_id: int
    run_id: int
    scheme_key: str
    outputs: int
    labels: int
    annotators: int
    items_complete: int
    items_disputed: int


@dataclass
class _Row:
    row: int
    prompt: str
    model: str
    output: str
    annotator: str
    category: LabelCategory
    note: str
    sample: int
    group: str
    member: str
    template: str
    attributes: dict = field(default_factory=dict)

    @property
    def prompt_key(self) -> tuple:
        """What makes a distinct prompt."""
        return (self.prompt, self.group, self.member, self.template)

    @property
    def output_key(self) -> tuple:
        """What makes a distinct output: the prompt, the model and the sample."""
        return (*self.prompt_key, self.model, self.sample)


def category_spec_parse(text: str) -> CategorySpec:
    """Parse `key:Name[:refusal,harmful]` (as the command line and the form take it)."""
    parts = [p.strip() for p in text.split(":")]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise AuditError(f"Category {text!r}: write key:Name, optionally :refusal or :refusal,harmful.")
    flags = {f.strip() for f in parts[2].split(",") if f.strip()} if len(parts) > 2 else set()
    if flags - _CATEGORY_FLAGS or len(parts) > 3:
        raise AuditError(f"Category {text!r}: the only flags are refusal and harmful.")
    return CategorySpec(
        key=parts[0],
        name=parts[1],
        counts_as_refusal="refusal" in flags,
        counts_as_harmful="harmful" in flags,
    )


def _text(record: dict, column: str) -> str:
    value = record.get(column, "") if column else ""
    return str(value).strip() if value is not None else ""


def _scheme_resolve(*, scheme_key: str, categories: list[CategorySpec]) -> LabelScheme:
    """The existing scheme `scheme_key`, or a new one with the declared categories."""
    existing = LabelScheme.objects.filter(key=scheme_key).first()
    if not categories:
        if existing is None:
            raise AuditError(f"No label scheme {scheme_key!r}: choose an existing one or declare categories.")
        return existing
    if existing is not None:
        raise AuditError(f"A label scheme {scheme_key!r} already exists: choose it, or declare a new key.")
    if not re.fullmatch(r"[-a-zA-Z0-9_]{1,64}", scheme_key):
        raise AuditError(f"Scheme key {scheme_key!r}: use letters, digits, - and _ only.")
    keys = [c.key for c in categories]
    if len(set(keys)) != len(keys) or len(categories) > 9:
        raise AuditError("Declare at most nine categories, each with a distinct key.")
    scheme = LabelScheme.objects.create(key=scheme_key, name=scheme_key, description="Declared in an import.")
    LabelCategory.objects.bulk_create(
        LabelCategory(
            scheme=scheme,
            key=slugify(c.key)[:64] or f"c{order}",
            name=c.name[:200],
            definition=c.name,
            shortcut=str(order),
            order=order,
            counts_as_refusal=c.counts_as_refusal,
            counts_as_harmful=c.counts_as_harmful,
        )
        for order, c in enumerate(categories, start=1)
    )
    return scheme


def _rows_validate(
    records: list[tuple[int, dict]], mapping: ImportMapping, categories: dict[str, LabelCategory]
) -> list[_Row]:
    """Check every row; raise one AuditError listing each problem with its row and column."""
    errors: list[dict] = []
    rows: list[_Row] = []
    required = [mapping.prompt_column, mapping.model_column, mapping.output_column, mapping.annotator_column]
    required += [mapping.label_column] + [c for c in (mapping.group_column,) if c]
    seen_labels: dict[tuple, int] = {}
    output_texts: dict[tuple, tuple[str, int]] = {}
    for number, record in records:
        row_errors = [
            {"row": number, "field": column, "message": f"The column {column!r} is empty or missing."}
            for column in required
            if not _text(record, column)
        ]
        label_text = _text(record, mapping.label_column)
        category = categories.get(label_text.lower())
        if label_text and category is None:
            row_errors.append(
                {
                    "row": number,
                    "field": mapping.label_column,
                    "message": f"{label_text[:80]!r} is neither the key nor the name of a category.",
                }
            )
        annotator = _text(record, mapping.annotator_column)
        if annotator and not _USERNAME.match(annotator):
            row_errors.append(
                {
                    "row": number,
                    "field": mapping.annotator_column,
                    "message": "Annotator names use letters, digits and @ . + - _ only (150 at most).",
                }
            )
        sample_text = _text(record, mapping.sample_column) or "0"
        if not sample_text.isdigit() or int(sample_text) > 32767:
            row_errors.append(
                {
                    "row": number,
                    "field": mapping.sample_column,
                    "message": "The sample is not an index 0-32767.",
                }
            )
        model = _text(record, mapping.model_column)
        if len(model) > 200:
            row_errors.append({"row": number, "field": mapping.model_column, "message": "Longer than 200."})
        for column in (mapping.group_column, mapping.member_column, mapping.template_column):
            if column and len(_text(record, column)) > 200:
                row_errors.append({"row": number, "field": column, "message": "Longer than 200 characters."})
        if row_errors:
            errors.extend(row_errors)
            continue
        row = _Row(
            row=number,
            prompt=_text(record, mapping.prompt_column),
            model=model,
            output=str(record.get(mapping.output_column)),
            annotator=annotator,
            category=category,
            note=_text(record, mapping.note_column),
            sample=int(sample_text),
            group=_text(record, mapping.group_column),
            member=_text(record, mapping.member_column),
            template=_text(record, mapping.template_column),
            attributes={c: record.get(c) for c in mapping.attribute_columns if c in record},
        )
        output_key = row.output_key
        first = output_texts.setdefault(output_key, (row.output, number))
        if first[0] != row.output:
            errors.append(
                {
                    "row": number,
                    "field": mapping.output_column,
                    "message": f"Row {first[1]} has another output for the same prompt, model and sample; "
                    f"give each output its own {mapping.sample_column!r} value.",
                }
            )
        label_key = (output_key, annotator)
        if label_key in seen_labels:
            errors.append(
                {
                    "row": number,
                    "field": mapping.annotator_column,
                    "message": f"{annotator} already labelled this output in row {seen_labels[label_key]}.",
                }
            )
        seen_labels.setdefault(label_key, number)
        rows.append(row)
    if errors:
        raise AuditError(
            f"{len(errors)} problem(s) in the file; nothing was imported.", errors=errors[:MAX_ERRORS]
        )
    return rows


def _annotators_get(names: Iterable[str]) -> dict[str, object]:
    """Existing users by name, plus new annotator users who cannot log in (unusable password)."""
    user_model = get_user_model()
    names = sorted(set(names))
    users = {u.username: u for u in user_model.objects.filter(username__in=names)}
    new = [name for name in names if name not in users]
    if new:
        roles_sync()
        from django.contrib.auth.models import Group as RoleGroup

        role = RoleGroup.objects.get(name=Role.ANNOTATOR)
        for name in new:
            user = user_model(username=name)
            user.set_unusable_password()
            user.save()
            user.groups.add(role)
            users[name] = user
    return users


def _group_get(axis: GroupAxis, name: str, cache: dict) -> Group:
    if name not in cache:
        key = slugify(name)[:64] or hashlib.sha1(name.encode()).hexdigest()[:12]  # noqa: S324 - a key
        cache[name], _ = Group.objects.get_or_create(axis=axis, key=key, defaults={"name": name})
    return cache[name]


def _template_get(text: str, cache: dict) -> PromptTemplate:
    if text not in cache:
        key = slugify(text)[:64] or hashlib.sha1(text.encode()).hexdigest()[:12]  # noqa: S324 - a key
        cache[text], _ = PromptTemplate.objects.get_or_create(
            key=key, defaults={"text": text, "source": "imported"}
        )
    return cache[text]


def _prompts_create(
    *, rows: list[_Row], axis: GroupAxis | None, prompt_set: PromptSet
) -> dict[tuple, Prompt]:
    """One prompt per distinct (text, group, member, template), with groups and members created or reused."""
    groups: dict[str, Group] = {}
    members: dict[tuple[str, str], GroupMember] = {}
    templates: dict[str, PromptTemplate] = {}
    prompts: dict[tuple, Prompt] = {}
    for row in rows:
        if row.prompt_key in prompts:
            continue
        group = _group_get(axis, row.group, groups) if axis is not None and row.group else None
        member = None
        if group is not None and row.member:
            if (row.group, row.member) not in members:
                members[(row.group, row.member)], _ = GroupMember.objects.get_or_create(
                    group=group, value=row.member
                )
            member = members[(row.group, row.member)]
        template = _template_get(row.template, templates) if row.template else None
        digest = hashlib.sha1("\x1f".join(row.prompt_key).encode()).hexdigest()[:16]  # noqa: S324 - a key
        prompts[row.prompt_key] = Prompt(
            prompt_set=prompt_set,
            position=len(prompts),
            key=f"{template.key if template else '-'}:{group.key if group else '-'}:{digest}",
            text=row.prompt,
            template=template,
            group=group,
            member=member,
            attributes=row.attributes,
        )
    Prompt.objects.bulk_create(prompts.values(), batch_size=2000)
    return prompts


def _run_create(*, rows: list[_Row], name: str, prompt_set: PromptSet, now) -> GenerationRun:
    """An imported, completed run over the models named in the rows (endpoints without replicas)."""
    endpoints = []
    for model in sorted({row.model for row in rows}):
        endpoint, _ = ModelEndpoint.objects.get_or_create(
            name=model, defaults={"served_model_name": model, "base_urls": [], "is_active": False}
        )
        endpoints.append(endpoint)
    run = GenerationRun.objects.create(
        name=f"{name} (imported)",
        prompt_set=prompt_set,
        samples_per_prompt=max(row.sample for row in rows) + 1,
        kind=GenerationRun.Kind.IMPORTED,
        status=GenerationRun.Status.COMPLETED,
        created_by=prompt_set.created_by,
        started_at=now,
        finished_at=now,
    )
    run.endpoints.set(endpoints)
    return run


def _outputs_create(
    *, rows: list[_Row], prompts: dict[tuple, Prompt], run: GenerationRun, now
) -> dict[tuple, Output]:
    endpoints = {e.name: e for e in run.endpoints.all()}
    outputs: dict[tuple, Output] = {}
    for row in rows:
        if row.output_key not in outputs:
            outputs[row.output_key] = Output(
                run=run,
                prompt=prompts[row.prompt_key],
                endpoint=endpoints[row.model],
                sample_index=row.sample,
                status=Output.Status.DONE,
                text=row.output,
                finished_at=now,
            )
    Output.objects.bulk_create(outputs.values(), batch_size=2000)
    return outputs


def _items_and_labels_create(
    *, campaign: Campaign, outputs: dict[tuple, Output], by_output: dict[tuple, list[_Row]], users: dict
) -> list[CampaignItem]:
    """Items in the campaign's seeded random order with their final labels resolved, then the labels."""
    order = list(range(len(outputs)))
    random.Random(campaign.seed).shuffle(order)  # noqa: S311 - a reproducible item order, not a secret
    items = []
    for rank, (key, output) in zip(order, outputs.items(), strict=True):
        outcome = item_outcome(  # the same resolution as labels made in the browser
            category_ids=[r.category.pk for r in by_output[key]],
            labels_needed=campaign.labels_per_output,
            final_rule=campaign.final_rule,
        )
        pattern, signature = label_summary([(users[r.annotator].pk, r.category.pk) for r in by_output[key]])
        items.append(
            CampaignItem.for_output(
                output,
                campaign=campaign,
                rank=rank,
                status=outcome.status,
                label_count=len(by_output[key]),
                label_pattern=pattern,
                label_signature=signature,
                final_category_id=outcome.final_category_id,
                final_source=outcome.final_source,
            )
        )
    CampaignItem.objects.bulk_create(items, batch_size=2000)
    labels = [
        Label(item=item, annotator=users[row.annotator], category=row.category, note=row.note)
        for item, key in zip(items, outputs, strict=True)
        for row in by_output[key]
    ]
    Label.objects.bulk_create(labels, batch_size=2000)
    LabelHistory.objects.bulk_create(
        (
            LabelHistory(
                label=label, changed_by=label.annotator, new_category=label.category, new_note=label.note
            )
            for label in labels
        ),
        batch_size=2000,
    )
    return items


@transaction.atomic
def labelled_data_import(
    *,
    actor,
    records: list[tuple[int, dict]],
    campaign_name: str,
    scheme_key: str,
    categories: list[CategorySpec] | None = None,
    mapping: ImportMapping | None = None,
    labels_per_output: int | None = None,
    final_rule: str = Campaign.FinalRule.ADJUDICATE,
    source: str = "",
) -> ImportResult:
    """Create a campaign (with its prompt set, imported run, outputs, annotators and labels) from rows."""
    mapping = mapping or ImportMapping()
    campaign_name = campaign_name.strip()
    if not campaign_name or len(campaign_name) > 200:
        raise AuditError("Give the campaign a name (200 characters at most).", code="campaign")
    if Campaign.objects.filter(name=campaign_name).exists():
        raise AuditError(f"A campaign named {campaign_name!r} already exists.", code="campaign")
    if final_rule not in Campaign.FinalRule.values:
        raise AuditError(f"Unknown final rule {final_rule!r}.")
    if mapping.group_column and not mapping.axis:
        raise AuditError("Name the axis the group column belongs to (e.g. ethnicity).")
    if labels_per_output is not None and labels_per_output < 1:
        raise AuditError("Labels per output must be at least 1.")
    scheme = _scheme_resolve(scheme_key=scheme_key, categories=categories or [])
    lookup: dict[str, LabelCategory] = {}
    for category in scheme.categories.all():
        lookup[category.name.lower()] = category
        lookup[category.key.lower()] = category
    rows = _rows_validate(records, mapping, lookup)

    now = timezone.now()
    creator = actor if actor is not None and actor.is_authenticated else None
    axis = None
    if mapping.group_column:
        axis, _ = GroupAxis.objects.get_or_create(
            key=slugify(mapping.axis)[:64] or "imported", defaults={"name": mapping.axis[:200]}
        )
    version = (PromptSet.objects.filter(name=campaign_name).aggregate(v=Max("version"))["v"] or 0) + 1
    prompt_set = PromptSet.objects.create(
        name=campaign_name,
        version=version,
        description=f"Imported from {source}" if source else "Imported",
        spec={"imported": True, "source": source},
        frozen_at=now,
        created_by=creator,
    )
    prompts = _prompts_create(rows=rows, axis=axis, prompt_set=prompt_set)
    run = _run_create(rows=rows, name=campaign_name, prompt_set=prompt_set, now=now)
    outputs = _outputs_create(rows=rows, prompts=prompts, run=run, now=now)
    by_output: dict[tuple, list[_Row]] = {}
    for row in rows:
        by_output.setdefault(row.output_key, []).append(row)
    campaign = Campaign.objects.create(
        name=campaign_name,
        description=f"Imported from {source}" if source else "Imported labelled data.",
        scheme=scheme,
        labels_per_output=labels_per_output or min(len(v) for v in by_output.values()),
        final_rule=final_rule,
        status=Campaign.Status.CLOSED,
        selection={"imported": True, "run_id": run.pk, "source": source},
        seed=random.SystemRandom().randrange(2**31),
        created_by=creator,
    )
    users = _annotators_get(row.annotator for row in rows)
    campaign.annotators.set(users.values())
    items = _items_and_labels_create(campaign=campaign, outputs=outputs, by_output=by_output, users=users)
    result = ImportResult(
        campaign_id=campaign.pk,
        prompt_set_id=prompt_set.pk,
        run_id=run.pk,
        scheme_key=scheme.key,
        outputs=len(outputs),
        labels=len(rows),
        annotators=len(users),
        items_complete=sum(item.status == CampaignItem.Status.COMPLETE for item in items),
        items_disputed=sum(item.status == CampaignItem.Status.DISPUTED for item in items),
    )
    audit_event_record(
        actor=actor, action="data.import", target=campaign, details={"source": source, **result.__dict__}
    )
    return result
