"""Parsing and validation of template and group uploads (CSV, JSON, YAML). Pure: no database access.

`templates_parse` and `groups_parse` read the whole upload, collect every problem (naming the row or line
and the field) and return normalised rows with the list of errors; callers save nothing unless that list
is empty. The formats are documented in README.md ("Templates and groups") and annotations/starter/.

Rules that apply to every format:
- the upload must be UTF-8 (a BOM is accepted) and hold at most `max_rows` templates or members (its
  size in bytes was checked where it was received, annotations.core.uploads); text is normalised to
  Unicode NFC so "María" typed two ways is one name;
- a text cell may not start with = + - @, a tab or a carriage return: spreadsheets run such cells as
  formulas when the data is exported and reopened (CSV injection), so they are rejected, not rewritten;
- YAML is read with the safe loader and without aliases (`*name`), which could multiply a small file.
"""

from annotations.library.importers.common import (
    FORMATS,
    FORMULA_PREFIXES,
    KEY_PATTERN,
    RESERVED_PLACEHOLDERS,
    ParsedUpload,
    is_formula,
    upload_format,
)
from annotations.library.importers.groups import groups_parse
from annotations.library.importers.templates import TEMPLATE_FIELDS, templates_parse

__all__ = [
    "FORMATS",
    "FORMULA_PREFIXES",
    "KEY_PATTERN",
    "RESERVED_PLACEHOLDERS",
    "TEMPLATE_FIELDS",
    "ParsedUpload",
    "groups_parse",
    "is_formula",
    "templates_parse",
    "upload_format",
]
