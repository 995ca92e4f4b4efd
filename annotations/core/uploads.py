"""The one check of an upload's size (settings.AUDIT_UPLOAD_MAX_BYTES), made by every upload route,
and the one reader of CSV/JSONL rows (with their line numbers) that the row imports share.

Views call `upload_read` on the uploaded file and hand the bytes to the service, so services and parsers
never check the size again; the message names the file's size and the limit, the same on every route.
"""

import csv
import io
import json

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from annotations.core.exceptions import AuditError

MAX_LISTED_ROW_ERRORS = 50


def upload_read(upload: UploadedFile | None, *, field: str = "file") -> bytes:
    """The bytes of an uploaded file; AuditError, without reading it, when none was sent or it is too big."""
    if upload is None:
        raise AuditError(
            "Choose a file to upload.",
            errors=[{"row": None, "line": None, "field": field, "message": "no file was sent"}],
        )
    limit = settings.AUDIT_UPLOAD_MAX_BYTES
    if upload.size > limit:
        message = f"the file is {upload.size:,} bytes; the limit is {limit:,} bytes"
        raise AuditError(
            f"The upload was rejected: {message}; nothing was saved.",
            errors=[{"row": None, "line": None, "field": field, "message": message}],
            code="invalid_upload",
        )
    return upload.read()


def _jsonl_read(text: str) -> list[tuple[int, dict]]:
    rows, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append({"row": number, "field": "", "message": f"Not JSON: {exc.msg}."})
            continue
        if not isinstance(value, dict):
            errors.append({"row": number, "field": "", "message": "Each line must be a JSON object."})
            continue
        rows.append((number, {k: "" if v is None else v for k, v in value.items()}))
    if errors:
        raise AuditError(
            "The file has lines that are not JSON objects.", errors=errors[:MAX_LISTED_ROW_ERRORS]
        )
    return rows


def _csv_read(text: str) -> list[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = []
    try:
        for record in reader:
            rows.append((reader.line_num, {k: v for k, v in record.items() if k is not None}))
    except csv.Error as exc:
        raise AuditError(f"Line {reader.line_num}: not valid CSV ({exc}).") from None
    return rows


def upload_rows_read(*, data: bytes, filename: str) -> list[tuple[int, dict]]:
    """Decode a CSV or JSONL file into (line number, row dict) pairs, within the row limit.

    An upload's size in bytes was checked where it was received (annotations.core.uploads).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AuditError(f"The file is not UTF-8 (byte {exc.start}).", code="encoding") from None
    if filename.lower().endswith((".jsonl", ".ndjson")):
        rows = _jsonl_read(text)
    elif filename.lower().endswith(".csv"):
        rows = _csv_read(text)
    else:
        raise AuditError("Upload a .csv or .jsonl file.", code="format")
    if len(rows) > settings.AUDIT_UPLOAD_MAX_ROWS:
        raise AuditError(
            f"The file has {len(rows)} rows; the limit is {settings.AUDIT_UPLOAD_MAX_ROWS}.", code="size"
        )
    if not rows:
        raise AuditError("The file has no rows.")
    return rows
