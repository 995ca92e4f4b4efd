"""Model instances from rows read with plain SQL, for the few queries every request runs.

Compiling an ORM query costs more CPU than PostgreSQL spends running these small ones; the rows are
converted with the ORM's own converters, so the instances are the ones the ORM would build.
"""

from django.db import connection
from django.db.models import Model


def select_columns(model: type[Model], alias: str) -> str:
    """The model's concrete columns as `alias."column", ...`, in the order `model_from_row` expects."""
    return ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in model._meta.concrete_fields)


def model_from_row(model: type[Model], values: tuple) -> Model:
    """A model instance from the values of its concrete columns (as selected by `select_columns`)."""
    fields = model._meta.concrete_fields
    converted = []
    for field, value in zip(fields, values, strict=True):
        col = field.get_col(model._meta.db_table)
        for converter in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
            value = converter(value, col, connection)  # noqa: PLW2901
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)
