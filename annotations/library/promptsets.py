"""Prompt sets: expanding chosen templates x every member of every chosen group, versions, freezing.

Expansion order is fixed and independent of the database's collation: templates by key, then groups by
(axis key, group key), then members by value (Python code-point order). A prompt's key is
`<template key>:<axis key>.<group key>:<member slug>`, so the same inputs always give the same prompts in
the same order with the same keys. The slot takes the member's value, `{group}` and `{axis}` the names,
and any other placeholder the member's attribute of that name.

A set that a generation run uses is frozen (`promptset_freeze`, called by the run-starting code);
revising a frozen set makes version N+1 pointing at it, revising an unfrozen set rebuilds it in place.
"""

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.text import slugify

from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError
from annotations.library.importers import is_formula
from annotations.library.placeholders import placeholders_fill
from annotations.models import Group, GroupMember, Prompt, PromptSet, PromptTemplate

SAMPLE_SIZE = 20
_BATCH_SIZE = 5000
_MAX_LISTED = 50


@dataclass
class PromptSetPlan:
    """What an expansion gives: count, a sample, duplicate texts and errors (each list capped at 50)."""

    template_keys: list[str]
    group_refs: list[str]
    count: int = 0
    sample: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    duplicate_count: int = 0
    errors: list[dict] = field(default_factory=list)
    error_count: int = 0

    def as_dict(self) -> dict:
        """JSON-able summary (the API's preview and the set's `spec`)."""
        return {
            "templates": self.template_keys,
            "groups": self.group_refs,
            "prompt_count": self.count,
            "duplicate_count": self.duplicate_count,
            "duplicates": self.duplicates,
            "sample": self.sample,
        }


@dataclass(frozen=True)
class _Row:
    key: str
    text: str
    template_id: int
    group_id: int
    member_id: int
    attributes: dict
    group: str
    member: str


def _member_slug(value: str) -> str:
    slug = slugify(value, allow_unicode=True)[:100]  # the key (template:axis.group:member) fits 300
    return slug or "m-" + hashlib.sha256(value.encode()).hexdigest()[:12]


def _selection(template_keys: list[str], group_refs: list[str]):
    """The chosen templates and groups (with members), sorted; AuditError naming unknown keys."""
    template_keys = sorted(set(template_keys))
    group_refs = sorted(set(group_refs))
    if not template_keys:
        raise AuditError("Choose at least one template.", errors=[_error("templates", "choose at least one")])
    if not group_refs:
        raise AuditError("Choose at least one group.", errors=[_error("groups", "choose at least one")])
    if "*" in template_keys:
        templates = list(PromptTemplate.objects.all())
    else:
        templates = list(PromptTemplate.objects.filter(key__in=template_keys))
    errors = [
        _error("templates", f"unknown template {key!r}")
        for key in sorted(set(template_keys) - {t.key for t in templates} - {"*"})
    ]
    wanted = Q(pk__in=[])
    for ref in group_refs:
        axis_key, _, group_key = ref.partition("/")
        if not group_key:
            errors.append(
                _error("groups", f"{ref!r} is not axis/group (e.g. name/muslim, or name/* for all)")
            )
        elif group_key == "*":
            wanted |= Q(axis__key=axis_key)
        else:
            wanted |= Q(axis__key=axis_key, key=group_key)
    groups = list(Group.objects.select_related("axis").filter(wanted))
    found = {f"{g.axis.key}/{g.key}" for g in groups} | {f"{g.axis.key}/*" for g in groups}
    errors += [
        _error("groups", f"unknown group {ref!r}") for ref in group_refs if "/" in ref and ref not in found
    ]
    if errors:
        raise AuditError("The selection names templates or groups that do not exist.", errors=errors)
    templates.sort(key=lambda t: t.key)
    groups.sort(key=lambda g: (g.axis.key, g.key))
    members: dict[int, list[tuple[int, str, dict]]] = {g.pk: [] for g in groups}
    for member_id, group_id, value, attributes in GroupMember.objects.filter(group__in=groups).values_list(
        "id", "group_id", "value", "attributes"
    ):
        members[group_id].append((member_id, value, attributes or {}))
    for rows in members.values():
        rows.sort(key=lambda row: row[1])
    return templates, groups, members


def _error(field_name: str, message: str) -> dict:
    return {"row": None, "line": None, "field": field_name, "message": f"{field_name}: {message}"}


def _expand(templates, groups, members, plan: PromptSetPlan) -> Iterator[_Row]:
    """Every prompt in order; notes key collisions, duplicate texts and unfillable placeholders in `plan`."""
    first_key_of_text: dict[str, str] = {}
    keys: set[str] = set()
    slugs = {member_id: _member_slug(value) for rows in members.values() for member_id, value, _ in rows}
    for template in templates:
        for group in groups:
            group_ref = f"{group.axis.key}.{group.key}"
            fixed = {"group": group.name, "axis": group.axis.name}
            for member_id, value, attributes in members[group.pk]:
                key = f"{template.key}:{group_ref}:{slugs[member_id]}"
                values = {**{k: str(v) for k, v in attributes.items()}, **fixed, template.slot: value}
                try:
                    text = placeholders_fill(template.text, values)
                except KeyError as exc:
                    _note(
                        plan,
                        "errors",
                        _error(
                            "template",
                            f"{template.key!r} needs {{{exc.args[0]}}}, which member {value!r} of "
                            f"{group.axis.key}/{group.key} does not have",
                        ),
                    )
                    continue
                if key in keys:
                    _note(
                        plan,
                        "errors",
                        _error(
                            "member",
                            f"two members of {group.axis.key}/{group.key} give the same prompt key {key!r}",
                        ),
                    )
                    continue
                keys.add(key)
                first = first_key_of_text.setdefault(text, key)
                if first != key:
                    _note(plan, "duplicates", {"text": text, "key": key, "same_as": first})
                yield _Row(key, text, template.pk, group.pk, member_id, attributes, group_ref, value)


def _note(plan: PromptSetPlan, what: str, item: dict) -> None:
    counter = "error_count" if what == "errors" else "duplicate_count"
    setattr(plan, counter, getattr(plan, counter) + 1)
    listed = getattr(plan, what)
    if len(listed) < _MAX_LISTED:
        listed.append(item)


def _walk(plan: PromptSetPlan, rows: Iterator[_Row]) -> Iterator[tuple[int, _Row]]:
    """(position, row) for every prompt, counting them and keeping the first ones as the sample."""
    for row in rows:
        if len(plan.sample) < SAMPLE_SIZE:
            plan.sample.append(
                {
                    "position": plan.count,
                    "key": row.key,
                    "text": row.text,
                    "group": row.group,
                    "member": row.member,
                    "attributes": row.attributes,
                }
            )
        yield plan.count, row
        plan.count += 1


def _new_plan(templates, groups) -> PromptSetPlan:
    return PromptSetPlan(
        template_keys=[t.key for t in templates], group_refs=[f"{g.axis.key}/{g.key}" for g in groups]
    )


def promptset_plan(*, template_keys: list[str], group_refs: list[str]) -> PromptSetPlan:
    """Expand without saving: the count, the first prompts, duplicates and errors (the preview)."""
    templates, groups, members = _selection(template_keys, group_refs)
    plan = _new_plan(templates, groups)
    for _ in _walk(plan, _expand(templates, groups, members, plan)):
        pass
    return plan


class _PromptWriter:
    """Inserts prompt rows in batches: COPY on PostgreSQL (100,000 rows in about a second, where
    bulk_create spends most of its time building model instances and SQL), bulk_create elsewhere."""

    _COLUMNS = ("prompt_set", "position", "key", "text", "template", "group", "member", "attributes")

    def __init__(self, prompt_set_id: int) -> None:
        self.prompt_set_id = prompt_set_id
        self.rows: list[tuple[int, _Row]] = []
        self.use_copy = connection.vendor == "postgresql" and connection.Database.__name__ == "psycopg2"

    def add(self, position: int, row: _Row) -> None:
        """Queue one prompt; writes a batch when enough are queued."""
        self.rows.append((position, row))
        if len(self.rows) >= _BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        """Write the queued prompts."""
        if not self.rows:
            return
        if self.use_copy:
            self._copy()
        else:
            Prompt.objects.bulk_create(
                Prompt(
                    prompt_set_id=self.prompt_set_id,
                    position=position,
                    key=row.key,
                    text=row.text,
                    template_id=row.template_id,
                    group_id=row.group_id,
                    member_id=row.member_id,
                    attributes=row.attributes,
                )
                for position, row in self.rows
            )
        self.rows = []

    def _copy(self) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for position, row in self.rows:
            writer.writerow(
                (
                    self.prompt_set_id,
                    position,
                    row.key,
                    row.text,
                    row.template_id,
                    row.group_id,
                    row.member_id,
                    json.dumps(row.attributes, ensure_ascii=False),
                )
            )
        buffer.seek(0)
        columns = ", ".join(
            connection.ops.quote_name(Prompt._meta.get_field(name).column) for name in self._COLUMNS
        )
        table = connection.ops.quote_name(Prompt._meta.db_table)
        with connection.cursor() as cursor:
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)


def _fill(*, prompt_set: PromptSet, template_keys: list[str], group_refs: list[str]) -> PromptSetPlan:
    """Insert the expansion into `prompt_set` in batches; AuditError (the caller rolls back) on errors."""
    templates, groups, members = _selection(template_keys, group_refs)
    plan = _new_plan(templates, groups)
    writer = _PromptWriter(prompt_set.pk)
    for position, row in _walk(plan, _expand(templates, groups, members, plan)):
        if not plan.error_count:
            writer.add(position, row)
    if plan.error_count:
        raise AuditError(
            f"The expansion has {plan.error_count} error(s); nothing was saved.", errors=plan.errors
        )
    if plan.count == 0:
        raise AuditError("The chosen groups have no members: the prompt set would be empty.")
    writer.flush()
    prompt_set.spec = {k: v for k, v in plan.as_dict().items() if k != "sample"}
    prompt_set.save(update_fields=["spec"])
    return plan


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise AuditError("The prompt set needs a name.", errors=[_error("name", "is empty")])
    if len(name) > 200 or is_formula(name):
        raise AuditError(
            "The name is too long or starts with = + - @.",
            errors=[_error("name", "at most 200 characters, not starting with = + - @")],
        )
    return name


def promptset_build(
    *, name: str, template_keys: list[str], group_refs: list[str], description: str = "", actor=None
) -> PromptSet:
    """Create version 1 of a new prompt set from the chosen templates x groups, all or nothing."""
    name = _check_name(name)
    try:
        with transaction.atomic():
            if PromptSet.objects.filter(name=name).exists():
                raise AuditError(
                    f"A prompt set named {name!r} exists: revise it (that makes a new version) or pick "
                    "another name.",
                    errors=[_error("name", "already used")],
                )
            prompt_set = PromptSet.objects.create(name=name, description=description, created_by=_user(actor))
            plan = _fill(prompt_set=prompt_set, template_keys=template_keys, group_refs=group_refs)
            audit_event_record(
                actor=actor,
                action="promptset.build",
                target=prompt_set,
                details={"prompts": plan.count, "duplicates": plan.duplicate_count},
            )
    except IntegrityError:
        raise AuditError(f"A prompt set named {name!r} was created at the same time; try again.") from None
    return prompt_set


def _user(actor):
    return actor if actor is not None and actor.is_authenticated else None


def promptset_revise(
    *, prompt_set: PromptSet, template_keys: list[str], group_refs: list[str], description: str, actor=None
) -> PromptSet:
    """Change a set's templates, groups or description.

    An unfrozen set is rebuilt in place (same id and version). A frozen one (used by a run) is left as
    it is and version N+1 is created with `previous` pointing at it; that new version is returned.
    """
    try:
        with transaction.atomic():
            current = PromptSet.objects.select_for_update().get(pk=prompt_set.pk)
            if current.is_frozen or current.runs.exists():
                latest = PromptSet.objects.filter(name=current.name).aggregate(v=Max("version"))["v"]
                target = PromptSet.objects.create(
                    name=current.name,
                    version=latest + 1,
                    description=description,
                    previous=current,
                    created_by=_user(actor),
                )
                action = "promptset.new_version"
            else:
                _delete_prompts(prompt_set_id=current.pk)
                current.description = description
                current.save(update_fields=["description"])
                target = current
                action = "promptset.rebuild"
            plan = _fill(prompt_set=target, template_keys=template_keys, group_refs=group_refs)
            audit_event_record(
                actor=actor,
                action=action,
                target=target,
                details={"prompts": plan.count, "previous": current.pk},
            )
    except IntegrityError:
        raise AuditError(
            "Another version of this prompt set was saved at the same time; try again."
        ) from None
    return target


def _delete_prompts(*, prompt_set_id: int) -> None:
    """Delete an unused set's prompts in one statement.

    QuerySet.delete() would load every prompt (100,000 model instances) to check the PROTECT relation
    from outputs; no output can point at them, since the set has no run and is locked against freezing.
    """
    table = connection.ops.quote_name(Prompt._meta.db_table)
    column = connection.ops.quote_name(Prompt._meta.get_field("prompt_set").column)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {column} = %s", [prompt_set_id])  # noqa: S608


def promptset_freeze(*, prompt_set: PromptSet) -> bool:
    """Mark the set as used by a run (conditional UPDATE); True when this call froze it, False if it was."""
    frozen = PromptSet.objects.filter(pk=prompt_set.pk, frozen_at__isnull=True).update(
        frozen_at=timezone.now()
    )
    prompt_set.refresh_from_db(fields=["frozen_at"])
    return bool(frozen)
