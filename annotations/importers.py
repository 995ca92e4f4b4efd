"""Parsing and validation of template and group uploads (CSV, JSON, YAML). Pure: no database access.

`templates_parse` and `groups_parse` read the whole upload, collect every problem (naming the row or line
and the field) and return normalised rows with the list of errors; callers save nothing unless that list
is empty. The formats are documented in README.md ("Templates and groups") and annotations/starter/.

Rules that apply to every format:
- the upload must be UTF-8 (a BOM is accepted), at most `max_bytes` long and hold at most `max_rows`
  templates or members; text is normalised to Unicode NFC so "María" typed two ways is one name;
- a text cell may not start with = + - @, a tab or a carriage return: spreadsheets run such cells as
  formulas when the data is exported and reopened (CSV injection), so they are rejected, not rewritten;
- YAML is read with the safe loader and without aliases (`*name`), which could multiply a small file.
"""

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field

import yaml
from django.utils.text import slugify

from annotations.placeholders import PLACEHOLDER_NAME, placeholders_parse

FORMATS = ("csv", "json", "yaml")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
TEMPLATE_FIELDS = ("key", "text", "slot", "topic", "target_group", "notes", "source")
RESERVED_PLACEHOLDERS = frozenset({"group", "axis"})
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_MAX_LENGTH = {
    "key": 64,
    "text": 4000,
    "slot": 64,
    "topic": 300,
    "target_group": 200,
    "source": 300,
    "notes": 4000,
    "axis": 200,
    "group": 200,
    "value": 200,
    "description": 4000,
    "attribute": 200,
}
_GROUP_FILE_FIELDS = {"axis", "description", "groups"}
_GROUP_FIELDS = {"group", "key", "description", "is_control", "members"}
_MEMBER_FIELDS = {"value", "attributes"}


class _Line:
    """Sentinel key under which the YAML loader records the line where a mapping starts."""


LINE = _Line()


@dataclass
class ParsedUpload:
    """What an upload holds once read: normalised rows (templates) or axes (groups), and every error."""

    kind: str
    format: str
    rows: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def error(self, *, row: int | None, line: int | None, field: str, message: str) -> None:
        """Record one problem, naming where it is."""
        where = []
        if row is not None:
            where.append(f"row {row}")
        if line is not None:
            where.append(f"line {line}")
        prefix = f"{', '.join(where)}, " if where else ""
        self.errors.append(
            {"row": row, "line": line, "field": field, "message": f"{prefix}{field}: {message}"}
        )


def upload_format(*, filename: str, declared: str | None = None) -> str:
    """The upload's format from `declared` or the file name's extension; ValueError when unknown."""
    name = (declared or (filename.rsplit(".", 1)[-1] if "." in filename else "")).lower()
    name = {"yml": "yaml"}.get(name, name)
    if name not in FORMATS:
        raise ValueError(f"Unknown format {name or filename!r}: use a .csv, .json or .yaml file.")
    return name


def is_formula(value: str) -> bool:
    """Whether a spreadsheet would run this cell as a formula (CSV injection)."""
    return value.startswith(FORMULA_PREFIXES)


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that refuses aliases and records the line of every mapping under LINE."""

    def compose_node(self, parent, index):
        """Refuse aliases: a few of them can expand a small file into a huge tree."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        """A mapping, plus the line it starts on."""
        mapping = super().construct_mapping(node, deep=deep)
        mapping[LINE] = node.start_mark.line + 1
        return mapping


def _decode(content: bytes, parsed: ParsedUpload, *, max_bytes: int) -> str | None:
    if len(content) > max_bytes:
        parsed.error(
            row=None,
            line=None,
            field="file",
            message=f"the file is {len(content):,} bytes; the limit is {max_bytes:,} bytes",
        )
        return None
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        parsed.error(
            row=None,
            line=line,
            field="file",
            message=f"not valid UTF-8 (byte 0x{content[exc.start]:02x}); save the file as UTF-8",
        )
        return None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        parsed.error(row=None, line=line, field="file", message="contains a NUL byte (is it a binary file?)")
        return None
    if not text.strip():
        parsed.error(row=None, line=None, field="file", message="the file is empty")
        return None
    return unicodedata.normalize("NFC", text)


def _load_tree(text: str, parsed: ParsedUpload):
    """The JSON or YAML document, or None after recording a syntax error with its line."""
    if parsed.format == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            parsed.error(row=None, line=exc.lineno, field="file", message=f"invalid JSON: {exc.msg}")
            return None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (_Loader is a SafeLoader without aliases)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        parsed.error(
            row=None,
            line=mark.line + 1 if mark else None,
            field="file",
            message=f"invalid YAML: {problem}",
        )
        return None


def _csv_records(text: str, parsed: ParsedUpload) -> tuple[list[str], list[tuple[int, dict]]] | None:
    """(header, [(line, {column: cell})]) for a CSV file; None after recording a structural error."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, dict]] = []
    header: list[str] | None = None
    try:
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            if not cells or all(not cell.strip() for cell in cells):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in cells]
                continue
            if len(cells) != len(header):
                parsed.error(
                    row=len(records) + 1,
                    line=line,
                    field="row",
                    message=f"has {len(cells)} cells but the header has {len(header)}",
                )
            records.append((line, dict(zip(header, cells, strict=False))))
    except csv.Error as exc:
        parsed.error(row=None, line=reader.line_num, field="file", message=f"malformed CSV: {exc}")
        return None
    if header is None:
        parsed.error(row=None, line=1, field="file", message="no header row")
        return None
    return header, records


def _text(
    parsed: ParsedUpload,
    raw,
    *,
    row: int | None,
    line: int | None,
    field: str,
    required: bool = False,
    strip: bool = True,
    limit: str | None = None,
) -> str | None:
    """A validated text cell ('' when absent), or None after recording why it is refused."""
    if raw is None:
        raw = ""
    if isinstance(raw, bool) or not isinstance(raw, str):
        parsed.error(
            row=row, line=line, field=field, message=f"must be text, not {type(raw).__name__} (quote it)"
        )
        return None
    if is_formula(raw):
        parsed.error(
            row=row,
            line=line,
            field=field,
            message="starts with = + - @ or a tab, which spreadsheets run as a formula; reword it",
        )
        return None
    value = raw.strip() if strip else raw
    if required and not value.strip():
        parsed.error(row=row, line=line, field=field, message="is empty")
        return None
    maximum = _MAX_LENGTH[limit or field]
    if len(value) > maximum:
        parsed.error(
            row=row, line=line, field=field, message=f"is {len(value)} characters; at most {maximum}"
        )
        return None
    return value


def _template_records(text: str, parsed: ParsedUpload) -> list[tuple[int | None, object]] | None:
    """[(line, record)] of a templates file, or None after recording why the file cannot be read."""
    if parsed.format == "csv":
        loaded = _csv_records(text, parsed)
        if loaded is None:
            return None
        header, csv_records = loaded
        for column in ("key", "text"):
            if column not in header:
                parsed.error(row=None, line=1, field=column, message="required column is missing")
        for column in header:
            if column not in TEMPLATE_FIELDS:
                parsed.error(
                    row=None,
                    line=1,
                    field=column or "(empty)",
                    message=f"unknown column; columns are {', '.join(TEMPLATE_FIELDS)}",
                )
        return None if parsed.errors else list(csv_records)
    tree = _load_tree(text, parsed)
    if parsed.errors:
        return None
    if isinstance(tree, dict) and isinstance(tree.get("templates"), list):
        items = tree["templates"]
    elif isinstance(tree, list):
        items = tree
    else:
        parsed.error(
            row=None, line=1, field="templates", message="expected {templates: [...]} or a list of templates"
        )
        return None
    return [(item.get(LINE) if isinstance(item, dict) else None, item) for item in items]


def templates_parse(
    content: bytes,
    *,
    fmt: str,
    max_bytes: int,
    max_rows: int,
    known_placeholders: frozenset[str] | set[str],
) -> ParsedUpload:
    """Read a templates upload; `known_placeholders` are the names a placeholder other than the slot may use.

    Each row: key (slug), text (with the slot's placeholder), slot (default "name"), topic, target_group,
    notes, source.
    """
    parsed = ParsedUpload(kind="templates", format=fmt)
    text = _decode(content, parsed, max_bytes=max_bytes)
    if text is None:
        return parsed
    records = _template_records(text, parsed)
    if records is None:
        return parsed
    if len(records) > max_rows:
        parsed.error(
            row=None,
            line=None,
            field="file",
            message=f"holds {len(records):,} templates; the limit is {max_rows:,} rows",
        )
        return parsed
    if not records:
        parsed.error(row=None, line=None, field="templates", message="the file holds no templates")
        return parsed
    first_row_of_key: dict[str, int] = {}
    for index, (line, record) in enumerate(records, start=1):
        row = _template_row(parsed, record, row=index, line=line, known=known_placeholders)
        if row is None:
            continue
        if row["key"] in first_row_of_key:
            parsed.error(
                row=index,
                line=line,
                field="key",
                message=f"duplicate key {row['key']!r} (first used in row {first_row_of_key[row['key']]})",
            )
            continue
        first_row_of_key[row["key"]] = index
        parsed.rows.append(row)
    return parsed


def _template_row(parsed: ParsedUpload, record, *, row: int, line: int | None, known) -> dict | None:
    if not isinstance(record, dict):
        parsed.error(
            row=row, line=line, field="template", message="must be a mapping with key, text, slot..."
        )
        return None
    errors_before = len(parsed.errors)
    for name in record:
        if name is not LINE and name not in TEMPLATE_FIELDS:
            parsed.error(
                row=row,
                line=line,
                field=str(name),
                message=f"unknown field; fields are {', '.join(TEMPLATE_FIELDS)}",
            )
    values = {
        name: _text(
            parsed,
            record.get(name),
            row=row,
            line=line,
            field=name,
            required=name in ("key", "text"),
            strip=name != "text",
        )
        for name in TEMPLATE_FIELDS
    }
    if len(parsed.errors) > errors_before:
        return None
    if not KEY_PATTERN.match(values["key"]):
        parsed.error(
            row=row,
            line=line,
            field="key",
            message=f"{values['key']!r} is not a key: use lowercase letters, digits, - and _ (at most 64)",
        )
        return None
    slot = values["slot"] or "name"
    if not _placeholders_ok(parsed, values["text"], slot=slot, row=row, line=line, known=known):
        return None
    return {**values, "slot": slot, "row": row, "line": line}


def _placeholders_ok(
    parsed: ParsedUpload, text: str, *, slot: str, row: int, line: int | None, known
) -> bool:
    """Whether the slot is a usable name that `text` uses, and every other placeholder is known."""
    if not PLACEHOLDER_NAME.match(slot) or slot in RESERVED_PLACEHOLDERS:
        parsed.error(
            row=row,
            line=line,
            field="slot",
            message=f"{slot!r} cannot be a slot: use a name such as name or descriptor (not group or axis)",
        )
        return False
    try:
        names = placeholders_parse(text)
    except ValueError as exc:
        parsed.error(row=row, line=line, field="text", message=str(exc))
        return False
    if slot not in names:
        parsed.error(
            row=row, line=line, field="text", message=f"missing placeholder {{{slot}}} (the slot it declares)"
        )
        return False
    unknown = [name for name in names if name != slot and name not in known]
    if unknown:
        listed = ", ".join(f"{{{name}}}" for name in unknown)
        parsed.error(
            row=row,
            line=line,
            field="text",
            message=f"unknown placeholder {listed}: besides the slot, use {{group}}, {{axis}} or an "
            "attribute of the members in the library (upload the groups first)",
        )
        return False
    return True


def groups_parse(content: bytes, *, fmt: str, max_bytes: int, max_rows: int) -> ParsedUpload:
    """Read a groups upload into `rows` = axes: [{key, name, description, groups: [{..., members}]}].

    YAML/JSON: {axis, description, groups: [{group, key?, description, is_control, members: [{value,
    attributes}]}]}. CSV: columns axis, group, value, and one column per attribute. A description or
    is_control left out is None, which leaves an existing group's value unchanged.
    """
    parsed = ParsedUpload(kind="groups", format=fmt)
    text = _decode(content, parsed, max_bytes=max_bytes)
    if text is None:
        return parsed
    if fmt == "csv":
        axes = _groups_from_csv(text, parsed, max_rows=max_rows)
    else:
        tree = _load_tree(text, parsed)
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
    name = _text(parsed, raw, row=row, line=line, field="axis", required=True)
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
    name = _text(parsed, name_raw, row=row, line=line, field="group", required=True)
    key = _text(parsed, key_raw, row=row, line=line, field="key")
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
    name = _text(parsed, raw, row=row, line=line, field="attributes", limit="attribute")
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
    loaded = _csv_records(text, parsed)
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
    description = _text(parsed, tree.get("description"), row=None, line=None, field="description")
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
    description = _text(parsed, item.get("description"), row=None, line=line, field="description")
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
    value = _text(parsed, raw.get("value"), row=row, line=line, field="value", required=True)
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
        text = _text(
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
