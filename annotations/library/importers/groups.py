"""Group uploads: an axis, its groups and their members (value and attributes)."""

from django.utils.text import slugify

from annotations.library.importers.common import (
    KEY_PATTERN,
    LINE,
    RESERVED_PLACEHOLDERS,
    ParsedUpload,
    csv_records,
    decode_upload,
    load_tree,
    text_cell,
)
from annotations.library.placeholders import PLACEHOLDER_NAME

_GROUP_FILE_FIELDS = {"axis", "description", "groups"}
_GROUP_FIELDS = {"group", "key", "description", "is_control", "members"}
_MEMBER_FIELDS = {"value", "attributes"}


def groups_parse(content: bytes, *, fmt: str, max_rows: int) -> ParsedUpload:
    """Read a groups upload into `rows` = axes: [{key, name, description, groups: [{..., members}]}].

    YAML/JSON: {axis, description, groups: [{group, key?, description, is_control, members: [{value,
    attributes}]}]}. CSV: columns axis, group, value, and one column per attribute. A description or
    is_control left out is None, which leaves an existing group's value unchanged.
    """
    parsed = ParsedUpload(kind="groups", format=fmt)
    text = decode_upload(content, parsed)
    if text is None:
        return parsed
    if fmt == "csv":
        axes = _groups_from_csv(text, parsed, max_rows=max_rows)
    else:
        tree = load_tree(text, parsed)
        if parsed.errors:
            return parsed
        axes = _groups_from_tree(tree, parsed, max_rows=max_rows)
    if parsed.errors or axes is None:
        return parsed
    _check_group_keys(axes, parsed)
    if not parsed.errors:
        parsed.rows = axes
    return parsed


def _axis(parsed: ParsedUpload, raw, *, row: int | None, line: int | None) -> dict | None:
    name = text_cell(parsed, raw, row=row, line=line, field="axis", required=True)
    if name is None:
        return None
    key = slugify(name)[:64]
    if not key:
        parsed.error(
            row=row, line=line, field="axis", message=f"{name!r} gives no key: use letters or digits"
        )
        return None
    return {"key": key, "name": name, "description": None, "groups": []}


def _group(parsed: ParsedUpload, name_raw, key_raw, *, row: int | None, line: int | None) -> dict | None:
    name = text_cell(parsed, name_raw, row=row, line=line, field="group", required=True)
    key = text_cell(parsed, key_raw, row=row, line=line, field="key")
    if name is None or key is None:
        return None
    key = key or slugify(name)[:64]
    if not KEY_PATTERN.match(key):
        parsed.error(
            row=row,
            line=line,
            field="key" if key_raw else "group",
            message=f"{key!r} is not a usable key: give a `key` of lowercase letters, digits, - and _",
        )
        return None
    return {"key": key, "name": name, "description": None, "is_control": None, "line": line, "members": []}


def _attribute_name(parsed: ParsedUpload, raw, *, row: int | None, line: int | None) -> str | None:
    name = text_cell(parsed, raw, row=row, line=line, field="attributes", limit="attribute")
    if name is None:
        return None
    if not PLACEHOLDER_NAME.match(name) or name in RESERVED_PLACEHOLDERS:
        parsed.error(
            row=row,
            line=line,
            field=f"attributes.{name}",
            message="attribute names use letters, digits and underscores (and are not group or axis)",
        )
        return None
    return name


def _groups_from_csv(text: str, parsed: ParsedUpload, *, max_rows: int) -> list[dict] | None:
    loaded = csv_records(text, parsed)
    if loaded is None:
        return None
    header, records = loaded
    for column in ("axis", "group", "value"):
        if column not in header:
            parsed.error(row=None, line=1, field=column, message="required column is missing")
    attribute_columns = [c for c in header if c not in ("axis", "group", "value", "key")]
    for column in attribute_columns:
        _attribute_name(parsed, column, row=None, line=1)
    if parsed.errors:
        return None
    if len(records) > max_rows:
        parsed.error(
            row=None,
            line=None,
            field="file",
            message=f"holds {len(records):,} rows; the limit is {max_rows:,}",
        )
        return None
    axes: dict[str, dict] = {}
    groups: dict[tuple[str, str], dict] = {}
    for index, (line, record) in enumerate(records, start=1):
        axis = _axis(parsed, record.get("axis"), row=index, line=line)
        group = _group(parsed, record.get("group"), record.get("key"), row=index, line=line)
        member = _member(
            parsed,
            {
                "value": record.get("value"),
                "attributes": {c: record.get(c) for c in attribute_columns if (record.get(c) or "").strip()},
            },
            row=index,
            line=line,
        )
        if axis is None or group is None or member is None:
            continue
        axis = axes.setdefault(axis["key"], axis)
        known = groups.get((axis["key"], group["key"]))
        if known is None:
            groups[(axis["key"], group["key"])] = group
            axis["groups"].append(group)
            known = group
        elif known["name"] != group["name"]:
            parsed.error(
                row=index,
                line=line,
                field="group",
                message=f"{group['name']!r} and {known['name']!r} have the same key {group['key']!r}",
            )
            continue
        known["members"].append(member)
    return list(axes.values())


def _groups_from_tree(tree, parsed: ParsedUpload, *, max_rows: int) -> list[dict] | None:
    if not isinstance(tree, dict):
        parsed.error(row=None, line=1, field="file", message="expected a mapping with axis and groups")
        return None
    for name in tree:
        if name is not LINE and name not in _GROUP_FILE_FIELDS:
            parsed.error(
                row=None,
                line=1,
                field=str(name),
                message="unknown field; the file has axis, description, groups",
            )
    axis = _axis(parsed, tree.get("axis"), row=None, line=None)
    description = text_cell(parsed, tree.get("description"), row=None, line=None, field="description")
    items = tree.get("groups")
    if not isinstance(items, list) or not items:
        parsed.error(row=None, line=None, field="groups", message="must be a non-empty list of groups")
        return None
    if axis is None or parsed.errors:
        return None
    if "description" in tree:
        axis["description"] = description
    total = sum(len(g.get("members") or []) for g in items if isinstance(g, dict))
    if total > max_rows:
        parsed.error(
            row=None,
            line=None,
            field="file",
            message=f"holds {total:,} members; the limit is {max_rows:,} rows",
        )
        return None
    row = 0
    for position, item in enumerate(items, start=1):
        group, row = _group_from_mapping(parsed, item, position=position, row=row)
        if group is not None:
            axis["groups"].append(group)
    return [axis]


def _group_from_mapping(parsed: ParsedUpload, item, *, position: int, row: int) -> tuple[dict | None, int]:
    """One group of a YAML/JSON file and the last member row number used."""
    line = item.get(LINE) if isinstance(item, dict) else None
    if not isinstance(item, dict):
        parsed.error(row=None, line=line, field=f"groups[{position}]", message="must be a mapping")
        return None, row
    for name in item:
        if name is not LINE and name not in _GROUP_FIELDS:
            parsed.error(
                row=None,
                line=line,
                field=f"groups[{position}].{name}",
                message=f"unknown field; a group has {', '.join(sorted(_GROUP_FIELDS))}",
            )
    group = _group(parsed, item.get("group"), item.get("key"), row=None, line=line)
    description = text_cell(parsed, item.get("description"), row=None, line=line, field="description")
    is_control = item.get("is_control")
    if is_control is not None and not isinstance(is_control, bool):
        parsed.error(row=None, line=line, field="is_control", message="must be true or false")
    members = item.get("members")
    if not isinstance(members, list) or not members:
        parsed.error(row=None, line=line, field="members", message="must be a non-empty list")
        return None, row
    for raw in members:
        row += 1
        entry = {"value": raw} if isinstance(raw, str) else raw  # a bare string: no attributes
        member_line = entry.get(LINE, line) if isinstance(entry, dict) else line
        member = _member(parsed, entry, row=row, line=member_line)
        if group is not None and member is not None:
            group["members"].append(member)
    if group is None:
        return None, row
    if "description" in item:
        group["description"] = description
    if isinstance(is_control, bool):
        group["is_control"] = is_control
    return group, row


def _member(parsed: ParsedUpload, raw, *, row: int, line: int | None) -> dict | None:
    if not isinstance(raw, dict):
        parsed.error(row=row, line=line, field="members", message="a member must be a mapping with value")
        return None
    for name in raw:
        if name is not LINE and name not in _MEMBER_FIELDS:
            parsed.error(
                row=row, line=line, field=str(name), message="unknown field; a member has value, attributes"
            )
    value = text_cell(parsed, raw.get("value"), row=row, line=line, field="value", required=True)
    attributes_raw = raw.get("attributes") or {}
    if not isinstance(attributes_raw, dict):
        parsed.error(
            row=row, line=line, field="attributes", message="must be a mapping such as {gender: woman}"
        )
        return None
    attributes = {}
    for name, attribute in attributes_raw.items():
        if name is LINE:
            continue
        key = _attribute_name(parsed, name, row=row, line=line)
        if key is None:
            continue
        if isinstance(attribute, bool | int | float):
            attributes[key] = attribute
            continue
        text = text_cell(
            parsed, attribute, row=row, line=line, field=f"attributes.{key}", required=True, limit="attribute"
        )
        if text is not None:
            attributes[key] = text
    if value is None:
        return None
    return {"value": value, "attributes": attributes, "row": row, "line": line}


def _check_group_keys(axes: list[dict], parsed: ParsedUpload) -> None:
    """Each group once per axis; each member value once per group."""
    for axis in axes:
        seen_groups: dict[str, dict] = {}
        for group in axis["groups"]:
            if group["key"] in seen_groups:
                parsed.error(
                    row=None,
                    line=group["line"],
                    field="group",
                    message=f"duplicate group {group['name']!r} on axis {axis['name']!r} "
                    f"(key {group['key']!r})",
                )
            seen_groups[group["key"]] = group
            first_row: dict[str, int] = {}
            for member in group["members"]:
                if member["value"] in first_row:
                    parsed.error(
                        row=member["row"],
                        line=member["line"],
                        field="value",
                        message=f"duplicate member {member['value']!r} in group {group['name']!r} "
                        f"(first in row {first_row[member['value']]})",
                    )
                first_row.setdefault(member["value"], member["row"])
