"""What every upload shares: size and encoding checks, CSV/JSON/YAML reading, text cells, errors."""

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field

import yaml

FORMATS = ("csv", "json", "yaml")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
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


def decode_upload(content: bytes, parsed: ParsedUpload) -> str | None:
    """The upload as NFC text, or None after recording why not (not UTF-8, binary, empty).

    The size was checked once, where the file was received (annotations.core.uploads).
    """
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


def load_tree(text: str, parsed: ParsedUpload):
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


def csv_records(text: str, parsed: ParsedUpload) -> tuple[list[str], list[tuple[int, dict]]] | None:
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


def text_cell(
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
