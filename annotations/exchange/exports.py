"""Exports of labelled data (labels, or outputs with their final label) as streamed CSV, JSONL or Parquet.

Every format is produced chunk by chunk from a server-side cursor, so the HTTP response, the management
command and the benchmark all stream with flat memory. CSV cells that a spreadsheet would run as a formula
are neutralised with a leading quote.
"""

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from django.db import connection, transaction
from django.db.models import TextChoices
from django.http import StreamingHttpResponse

from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError, NotFoundError
from annotations.exchange.selectors import ExportRows, label_export_rows, output_export_rows
from annotations.models import Campaign

BATCH_ROWS = 10_000  # rows per Parquet row group
TEXT_BATCH_ROWS = 5_000  # rows per chunk of CSV or JSONL
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CHARS = frozenset(_FORMULA_STARTS)


class ExportKind(TextChoices):
    """What one row is."""

    LABELS = "labels", "One row per label"
    OUTPUTS = "outputs", "One row per output with its final label"


class ExportFormat(TextChoices):
    """The file format, with its media type and file extension below."""

    CSV = "csv", "CSV"
    JSONL = "jsonl", "JSON Lines"
    PARQUET = "parquet", "Parquet"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSONL: "application/x-ndjson",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


@dataclass(frozen=True)
class Export:
    """A ready-to-stream export: its file name, media type and an iterator of byte chunks."""

    filename: str
    media_type: str
    chunks: Iterator[bytes]


def csv_cell_neutralise(value: object) -> object:
    """Prefix a quote to text a spreadsheet would run as a formula (starts with = + - @, tab or CR)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _batches(rows: Iterable[tuple], size: int = BATCH_ROWS) -> Iterator[list[tuple]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _csv_chunks(data: ExportRows) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(data.columns)
    quote = "'"
    for batch in _batches(data.rows, TEXT_BATCH_ROWS):
        # csv_cell_neutralise, inlined: this runs for every cell of millions of rows
        writer.writerows(
            [quote + v if v.__class__ is str and v[:1] in _FORMULA_CHARS else v for v in row] for row in batch
        )
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot export {type(value).__name__}")


def _jsonl_chunks(data: ExportRows) -> Iterator[bytes]:
    columns = data.columns
    encode = json.JSONEncoder(ensure_ascii=False, default=_json_default).encode
    for batch in _batches(data.rows, TEXT_BATCH_ROWS):
        yield "".join(encode(dict(zip(columns, row, strict=True))) + "\n" for row in batch).encode()


class _Sink(io.RawIOBase):
    """A write-only file that hands what was written to the caller between row groups."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        """Everything written since the last call."""
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def _arrow_type(column: str, values: list, *, types: dict[str, str] | None = None):
    import pyarrow as pa

    if types and column in types:
        return pa.type_for_alias(types[column])
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return pa.bool_()
    if isinstance(sample, int) or column.endswith("_id") or column in {"sample", "label_count"}:
        return pa.int64()
    if isinstance(sample, float) or column == "active_seconds":
        return pa.float64()
    if isinstance(sample, dt.datetime) or column.endswith("_at"):
        return pa.timestamp("us", tz="UTC")
    return pa.string()


def _parquet_chunks(data: ExportRows) -> Iterator[bytes]:
    import pyarrow as pa  # imported here: CSV and JSONL exports do not pay for it
    import pyarrow.parquet as pq

    sink = _Sink()
    writer = None
    for batch in _batches(data.rows):
        columns = list(zip(*batch, strict=True))
        if writer is None:
            schema = pa.schema(
                [
                    pa.field(name, _arrow_type(name, list(values), types=data.column_types))
                    for name, values in zip(data.columns, columns, strict=True)
                ]
            )
            writer = pq.ParquetWriter(sink, schema, compression="zstd")
        table = pa.Table.from_arrays(
            [pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)],
            schema=schema,
        )
        writer.write_table(table)
        yield sink.take()
    if writer is None:  # no rows: still a valid file with the columns
        schema = pa.schema([pa.field(name, pa.string()) for name in data.columns])
        writer = pq.ParquetWriter(sink, schema)
    writer.close()
    yield sink.take()


_WRITERS = {
    ExportFormat.CSV: _csv_chunks,
    ExportFormat.JSONL: _jsonl_chunks,
    ExportFormat.PARQUET: _parquet_chunks,
}


def _in_one_transaction(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Read in a transaction: PostgreSQL then streams the cursor instead of materialising it (WITH HOLD)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")  # compiling the big join costs more than it saves
        yield from chunks


def export_open(*, actor, kind: str, file_format: str, campaign_id: int | None = None) -> Export:
    """Start a streamed export of `kind` in `file_format`, of one campaign or all; records an audit event."""
    if kind not in ExportKind.values:
        raise AuditError(f"Unknown export {kind!r}: choose {', '.join(ExportKind.values)}.", code="kind")
    if file_format not in ExportFormat.values:
        raise AuditError(
            f"Unknown format {file_format!r}: choose {', '.join(ExportFormat.values)}.", code="format"
        )
    campaign = None
    if campaign_id is not None:
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            raise NotFoundError("No such campaign.")
    select = label_export_rows if kind == ExportKind.LABELS else output_export_rows
    data = select(campaign_id=campaign_id, text_timestamps=file_format != ExportFormat.PARQUET)
    audit_event_record(
        actor=actor,
        action="data.export",
        target=campaign,
        details={"kind": kind, "format": file_format, "campaign_id": campaign_id},
    )
    scope = f"campaign-{campaign_id}" if campaign_id is not None else "all"
    return Export(
        filename=f"{kind}-{scope}.{file_format}",
        media_type=MEDIA_TYPES[ExportFormat(file_format)],
        chunks=_in_one_transaction(_WRITERS[ExportFormat(file_format)](data)),
    )


def export_streaming_response(export: Export) -> StreamingHttpResponse:
    """A download response streaming the export's chunks."""
    response = StreamingHttpResponse(export.chunks, content_type=export.media_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
