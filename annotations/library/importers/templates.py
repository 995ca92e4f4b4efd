"""Templates uploads: key, text with named placeholders, slot, topic, target group, notes, source."""

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
from annotations.library.placeholders import PLACEHOLDER_NAME, placeholders_parse

TEMPLATE_FIELDS = ("key", "text", "slot", "topic", "target_group", "notes", "source")


def _template_records(text: str, parsed: ParsedUpload) -> list[tuple[int | None, object]] | None:
    """[(line, record)] of a templates file, or None after recording why the file cannot be read."""
    if parsed.format == "csv":
        loaded = csv_records(text, parsed)
        if loaded is None:
            return None
        header, records = loaded
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
        return None if parsed.errors else list(records)
    tree = load_tree(text, parsed)
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
    max_rows: int,
    known_placeholders: frozenset[str] | set[str],
) -> ParsedUpload:
    """Read a templates upload; `known_placeholders` are the names a placeholder other than the slot may use.

    Each row: key (slug), text (with the slot's placeholder), slot (default "name"), topic, target_group,
    notes, source.
    """
    parsed = ParsedUpload(kind="templates", format=fmt)
    text = decode_upload(content, parsed)
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
        name: text_cell(
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
