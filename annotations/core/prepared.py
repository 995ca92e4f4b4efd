"""Server-side prepared statements for the labelling hot path on PostgreSQL.

Why: PostgreSQL plans every statement it receives, and for the next-item and submit statements the
planning cost as much as running them (0.2-0.9 ms each, against 0.05-0.85 ms of execution, measured
with EXPLAIN ANALYZE on the 1,000,000-item bench campaign). A prepared statement is planned once per
database connection; PostgreSQL then keeps a generic plan once it is no worse than the custom ones.
psycopg2 has no prepared statements of its own, so this sends `PREPARE` the first time a connection
runs a statement, in the same round trip as its first `EXECUTE`, and `EXECUTE` alone afterwards.

Statements use named parameters (`%(name)s`): each name becomes one `$n`, however often it occurs.
Where PostgreSQL cannot infer a parameter's type from its context (a bare value in a select list),
the SQL casts it. Other databases, and PostgreSQL with AUDIT_PREPARED_STATEMENTS=0 (needed behind a
connection pooler in transaction mode, where consecutive statements may reach different sessions),
run the same SQL as a plain statement.
"""

import re
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.models import Model

_PARAM = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Statement:
    """One SQL statement with named parameters, prepared under `name` on PostgreSQL connections."""

    name: str
    sql: str
    names: tuple[str, ...] = field(init=False)
    prepare: str = field(init=False)

    def __post_init__(self) -> None:
        names: list[str] = []
        for name in _PARAM.findall(self.sql):
            if name not in names:
                names.append(name)
        numbered = _PARAM.sub(lambda m: f"${names.index(m.group(1)) + 1}", self.sql)
        object.__setattr__(self, "names", tuple(names))
        object.__setattr__(self, "prepare", f"PREPARE {self.name} AS {numbered}")

    def execute(self, cursor, params: dict) -> None:
        """Run the statement on `cursor` (a cursor of `django.db.connection`) with `params`."""
        if connection.vendor != "postgresql" or not settings.AUDIT_PREPARED_STATEMENTS:
            cursor.execute(self.sql, params)
            return
        values = [params[name] for name in self.names]
        call = f"EXECUTE {self.name}({', '.join(['%s'] * len(values))})" if values else f"EXECUTE {self.name}"
        state = _session_state()
        if self.name in state.prepared:
            cursor.execute(call, values)
            return
        # PREPARE and the first EXECUTE in one round trip. A failed round trip leaves it unknown whether
        # the PREPARE ran (it outlives a rollback), so the next one starts by forgetting them all.
        reset = ""
        if state.unsure:
            reset = "DEALLOCATE ALL;\n"
            state.prepared.clear()
        state.unsure = True
        cursor.execute(reset + self.prepare.replace("%", "%%") + ";\n" + call, values)
        state.unsure = False
        state.prepared.add(self.name)


@dataclass
class _SessionState:
    """What this module prepared on one database session."""

    session: object
    prepared: set[str] = field(default_factory=set)
    unsure: bool = False


def _session_state() -> _SessionState:
    """The state of the current database session (a new session starts with nothing prepared)."""
    raw = connection.connection
    state = getattr(connection, "_audit_prepared", None)
    if state is None or state.session is not raw:
        state = _SessionState(raw)
        connection._audit_prepared = state
    return state


# --------------------------------------------------------------------------- rows to model instances


def model_columns(model: type[Model], alias: str) -> str:
    """The model's concrete columns as `alias.column, ...`, in the order `model_instance` reads them."""
    return ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in model._meta.concrete_fields)


@cache
def _converters(model: type[Model]) -> tuple[list[str], list[tuple]]:
    """The model's concrete attribute names, and per column the (converters, column) the ORM applies."""
    fields = model._meta.concrete_fields
    columns = []
    for field_ in fields:
        col = field_.get_col(model._meta.db_table)
        columns.append((connection.ops.get_db_converters(col) + col.get_db_converters(connection), col))
    return [f.attname for f in fields], columns


def model_instance(model: type[Model], values: tuple) -> Model:
    """A model instance from its concrete columns read with plain SQL (`model_columns`), converted as
    the ORM converts them (time zones on SQLite, JSON, decimals): what `Model.from_db` gets from a query."""
    attnames, columns = _converters(model)
    converted = []
    for (converters, col), value in zip(columns, values, strict=True):
        for converter in converters:
            value = converter(value, col, connection)  # noqa: PLW2901
        converted.append(value)
    return model.from_db(connection.alias, attnames, converted)
