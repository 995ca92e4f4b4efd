"""The prompt library: importing templates and group lists (uploads, the starter pack, HolisticBias).

An import is two steps. `*_upload_check` reads and validates the whole file (library.importers) and
compares it with the library, saving nothing; `*_import` writes the checked rows in one transaction with
bulk inserts and updates. Imports add and update, never delete: a template key or a member that is not
in the file is left alone, because prompt sets may point at it.
"""

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError
from annotations.library.importers import (
    RESERVED_PLACEHOLDERS,
    ParsedUpload,
    groups_parse,
    templates_parse,
    upload_format,
)
from annotations.library.placeholders import placeholders_parse
from annotations.library.selectors import member_attribute_names
from annotations.models import Group, GroupAxis, GroupMember, PromptSet, PromptTemplate

STARTER_DIR = Path(__file__).resolve().parent.parent / "starter"
_TEMPLATE_COPIED = ("text", "slot", "topic", "target_group", "notes", "source")


@dataclass
class ImportPlan:
    """A checked upload: its rows and what importing them would do (new, changed, unchanged)."""

    kind: str
    format: str
    rows: list[dict]
    counts: dict = field(default_factory=dict)

    def preview(self, limit: int = 10) -> list[dict]:
        """The first rows, flat: templates as they are, groups as one row per member."""
        if self.kind == "templates":
            return self.rows[:limit]
        flat = [
            {
                "axis": axis["name"],
                "group": group["name"],
                "value": member["value"],
                "attributes": member["attributes"],
            }
            for axis in self.rows
            for group in axis["groups"]
            for member in group["members"]
        ]
        return flat[:limit]

    def as_dict(self) -> dict:
        """JSON-able summary for the API: kind, format, counts, first rows."""
        return {"kind": self.kind, "format": self.format, "counts": self.counts, "preview": self.preview()}


def _raise_if_errors(parsed: ParsedUpload, *, what: str) -> None:
    if parsed.errors:
        raise AuditError(
            f"The {what} upload was rejected with {len(parsed.errors)} error(s); nothing was saved.",
            errors=parsed.errors,
            code="invalid_upload",
        )


def _format(filename: str, declared: str | None) -> str:
    try:
        return upload_format(filename=filename, declared=declared)
    except ValueError as exc:
        raise AuditError(
            str(exc), errors=[{"row": None, "line": None, "field": "file", "message": str(exc)}]
        ) from None


def _known_placeholders() -> set[str]:
    return set(RESERVED_PLACEHOLDERS) | member_attribute_names()


def template_upload_check(*, content: bytes, filename: str, fmt: str | None = None) -> ImportPlan:
    """Read and validate a templates file and compare it with the library; saves nothing.

    Raises AuditError listing every problem (row or line, field) when the file cannot be imported whole.
    """
    parsed = templates_parse(
        content,
        fmt=_format(filename, fmt),
        max_rows=settings.AUDIT_UPLOAD_MAX_ROWS,
        known_placeholders=_known_placeholders(),
    )
    _raise_if_errors(parsed, what="templates")
    plan = ImportPlan(kind="templates", format=parsed.format, rows=parsed.rows)
    plan.counts = _template_counts(parsed.rows, *_template_changes(parsed.rows))
    return plan


def _template_counts(rows: list[dict], new: list, changed: list, unchanged: int) -> dict:
    """Counts for the preview; `same_text` counts templates whose text repeats an earlier one in the
    file (they would give duplicate prompts)."""
    return {
        "templates": len(rows),
        "new": len(new),
        "changed": len(changed),
        "unchanged": unchanged,
        "same_text": len(rows) - len({row["text"] for row in rows}),
    }


def _template_changes(rows: list[dict]) -> tuple[list[dict], list[PromptTemplate], int]:
    """(rows to create, existing templates updated in memory, number unchanged)."""
    existing = PromptTemplate.objects.in_bulk([row["key"] for row in rows], field_name="key")
    new, changed, unchanged = [], [], 0
    for row in rows:
        template = existing.get(row["key"])
        if template is None:
            new.append(row)
        elif any(getattr(template, name) != row[name] for name in _TEMPLATE_COPIED):
            for name in _TEMPLATE_COPIED:
                setattr(template, name, row[name])
            changed.append(template)
        else:
            unchanged += 1
    return new, changed, unchanged


@transaction.atomic
def template_import(*, plan: ImportPlan, actor=None, filename: str = "") -> ImportPlan:
    """Save a checked templates upload in one transaction (create new keys, update changed ones)."""
    if plan.kind != "templates":
        raise AuditError("This is not a templates upload.")
    known = _known_placeholders()
    errors = [
        {
            "row": row["row"],
            "line": row["line"],
            "field": "text",
            "message": f"unknown placeholder {{{name}}}",
        }
        for row in plan.rows
        for name in placeholders_parse(row["text"])
        if name != row["slot"] and name not in known
    ]
    if errors:
        raise AuditError("The library changed since the upload was checked; upload it again.", errors=errors)
    new, changed, unchanged = _template_changes(plan.rows)
    try:
        with transaction.atomic():
            PromptTemplate.objects.bulk_create(
                [
                    PromptTemplate(key=row["key"], **{name: row[name] for name in _TEMPLATE_COPIED})
                    for row in new
                ],
                batch_size=1000,
            )
            PromptTemplate.objects.bulk_update(changed, _TEMPLATE_COPIED, batch_size=1000)
    except IntegrityError:
        raise AuditError("Another import saved the same templates at the same time; try again.") from None
    plan.counts = _template_counts(plan.rows, new, changed, unchanged)
    audit_event_record(
        actor=actor,
        action="templates.import",
        details={"file": filename, "format": plan.format, **plan.counts},
    )
    return plan


def group_upload_check(*, content: bytes, filename: str, fmt: str | None = None) -> ImportPlan:
    """Read and validate a groups file and compare it with the library; saves nothing.

    Raises AuditError listing every problem (row or line, field) when the file cannot be imported whole.
    """
    parsed = groups_parse(
        content,
        fmt=_format(filename, fmt),
        max_rows=settings.AUDIT_UPLOAD_MAX_ROWS,
    )
    _raise_if_errors(parsed, what="groups")
    plan = ImportPlan(kind="groups", format=parsed.format, rows=parsed.rows)
    plan.counts = _group_changes(parsed.rows).counts()
    return plan


@dataclass
class _GroupChanges:
    """What a groups import changes; rows not yet saved have no primary key."""

    axes: dict[str, GroupAxis]
    new_axes: list[GroupAxis] = field(default_factory=list)
    changed_axes: list[GroupAxis] = field(default_factory=list)
    groups: dict[tuple[str, str], Group] = field(default_factory=dict)
    new_groups: list[Group] = field(default_factory=list)
    changed_groups: list[Group] = field(default_factory=list)
    members: int = 0
    new_members: list[tuple[tuple[str, str], dict]] = field(default_factory=list)
    changed_members: list[GroupMember] = field(default_factory=list)

    def counts(self) -> dict:
        return {
            "axes": len(self.axes),
            "groups": len(self.groups),
            "members": self.members,
            "new_groups": len(self.new_groups),
            "changed_groups": len(self.changed_groups),
            "new": len(self.new_members),
            "changed": len(self.changed_members),
            "unchanged": self.members - len(self.new_members) - len(self.changed_members),
        }


def _update(obj, wanted: dict) -> bool:
    """Set `wanted` fields on `obj` (None means keep); whether anything changed."""
    wanted = {name: value for name, value in wanted.items() if value is not None}
    if all(getattr(obj, name) == value for name, value in wanted.items()):
        return False
    for name, value in wanted.items():
        setattr(obj, name, value)
    return True


def _group_changes(axes_rows: list[dict]) -> _GroupChanges:
    """Compare checked group rows with the library: what to create and what to update."""
    axes = GroupAxis.objects.in_bulk([axis["key"] for axis in axes_rows], field_name="key")
    changes = _GroupChanges(axes={})
    for axis_row in axes_rows:
        axis = axes.get(axis_row["key"])
        if axis is None:
            axis = GroupAxis(
                key=axis_row["key"], name=axis_row["name"], description=axis_row["description"] or ""
            )
            changes.new_axes.append(axis)
        elif _update(axis, {"name": axis_row["name"], "description": axis_row["description"]}):
            changes.changed_axes.append(axis)
        changes.axes[axis_row["key"]] = axis
    existing_groups = {
        (g.axis.key, g.key): g
        for g in Group.objects.select_related("axis").filter(axis__key__in=list(changes.axes))
    }
    for axis_row in axes_rows:
        for row in axis_row["groups"]:
            ref = (axis_row["key"], row["key"])
            group = existing_groups.get(ref)
            wanted = {"name": row["name"], "description": row["description"], "is_control": row["is_control"]}
            if group is None:
                group = Group(key=row["key"], name=row["name"], description="", is_control=False)
                _update(group, wanted)
                changes.new_groups.append(group)
            elif _update(group, wanted):
                changes.changed_groups.append(group)
            changes.groups[ref] = group
    _member_changes(axes_rows, changes)
    return changes


def _member_changes(axes_rows: list[dict], changes: _GroupChanges) -> None:
    saved_groups = [g for g in changes.groups.values() if g.pk is not None]
    existing = {(m.group_id, m.value): m for m in GroupMember.objects.filter(group__in=saved_groups)}
    for axis_row in axes_rows:
        for row in axis_row["groups"]:
            ref = (axis_row["key"], row["key"])
            group = changes.groups[ref]
            for member_row in row["members"]:
                changes.members += 1
                member = existing.get((group.pk, member_row["value"])) if group.pk else None
                if member is None:
                    changes.new_members.append((ref, member_row))
                elif member.attributes != member_row["attributes"]:
                    member.attributes = member_row["attributes"]
                    changes.changed_members.append(member)


@transaction.atomic
def group_import(*, plan: ImportPlan, actor=None, filename: str = "") -> ImportPlan:
    """Save a checked groups upload in one transaction: axes, groups and members, created or updated."""
    if plan.kind != "groups":
        raise AuditError("This is not a groups upload.")
    changes = _group_changes(plan.rows)
    try:
        with transaction.atomic():
            GroupAxis.objects.bulk_create(changes.new_axes)
            GroupAxis.objects.bulk_update(changes.changed_axes, ("name", "description"))
            axes = GroupAxis.objects.in_bulk(list(changes.axes), field_name="key")
            for (axis_key, _), group in changes.groups.items():
                group.axis = axes[axis_key]
            Group.objects.bulk_create(changes.new_groups)
            Group.objects.bulk_update(changes.changed_groups, ("name", "description", "is_control"))
            group_ids = {
                (g.axis.key, g.key): g.pk
                for g in Group.objects.select_related("axis").filter(axis__key__in=list(changes.axes))
            }
            GroupMember.objects.bulk_create(
                [
                    GroupMember(group_id=group_ids[ref], value=row["value"], attributes=row["attributes"])
                    for ref, row in changes.new_members
                ],
                batch_size=2000,
            )
            GroupMember.objects.bulk_update(changes.changed_members, ("attributes",), batch_size=2000)
    except IntegrityError:
        raise AuditError("Another import saved the same groups at the same time; try again.") from None
    plan.counts = changes.counts()
    audit_event_record(
        actor=actor, action="groups.import", details={"file": filename, "format": plan.format, **plan.counts}
    )
    return plan


def library_import_starter(*, actor=None) -> tuple[ImportPlan, ImportPlan]:
    """Import the starter pack's templates and names (idempotent: a second run changes nothing)."""
    groups_file = STARTER_DIR / "groups.yaml"
    templates_file = STARTER_DIR / "templates.yaml"
    with transaction.atomic():
        groups = group_import(
            plan=group_upload_check(content=groups_file.read_bytes(), filename=groups_file.name),
            actor=actor,
            filename=str(groups_file.relative_to(settings.BASE_DIR)),
        )
        templates = template_import(
            plan=template_upload_check(content=templates_file.read_bytes(), filename=templates_file.name),
            actor=actor,
            filename=str(templates_file.relative_to(settings.BASE_DIR)),
        )
    return templates, groups


STARTER_PROMPT_SET = "Starter pack"


def demo_library(*, stdout) -> PromptSet:
    """Demo data: the starter pack's templates and names, and the prompt set "Starter pack" (1,792 prompts).

    Idempotent: reuses the newest "Starter pack" version when it was built from the same selection.
    """
    from annotations.library.promptsets import promptset_build, promptset_revise

    templates, groups = library_import_starter()
    stdout.write(
        f"Starter pack: {templates.counts['templates']} templates ({templates.counts['new']} new), "
        f"{groups.counts['members']} names in {groups.counts['groups']} groups ({groups.counts['new']} new)"
    )
    template_keys = [row["key"] for row in templates.rows]
    group_refs = [f"{axis['key']}/{group['key']}" for axis in groups.rows for group in axis["groups"]]
    latest = PromptSet.objects.filter(name=STARTER_PROMPT_SET).order_by("-version").first()
    if latest is None:
        prompt_set = promptset_build(
            name=STARTER_PROMPT_SET,
            template_keys=template_keys,
            group_refs=group_refs,
            description="The starter pack: every template crossed with every name (56 x 32).",
        )
    elif latest.spec.get("templates") == sorted(template_keys) and latest.spec.get("groups") == sorted(
        group_refs
    ):
        prompt_set = latest
    else:
        prompt_set = promptset_revise(
            prompt_set=latest,
            template_keys=template_keys,
            group_refs=group_refs,
            description=latest.description,
        )
    stdout.write(f"Prompt set {prompt_set}: {prompt_set.prompts.count()} prompts")
    return prompt_set
