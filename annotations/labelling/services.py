"""Labelling: leasing the next item, submitting, skipping and changing labels, adjudicating.

Concurrency rules. An item has at most one active lease (a unique index), so two annotators never hold
the same item. Every write that changes how many labels an item has, or its status, happens while holding
the item's row lock. On PostgreSQL the next-item statement locks its candidate with SKIP LOCKED (rows
another annotator is leasing or labelling are passed over) and inserts the lease with ON CONFLICT DO
NOTHING, so the unique index settles a race its snapshot could not see; the submit function locks the item
first and checks my lease after. No item gets more labels than the campaign needs. On SQLite the settings
open every transaction with BEGIN IMMEDIATE, which serialises writers.

The hot path (next item, submit) is plain SQL: it is the per-label cost on a busy campaign, and the ORM
spent more CPU compiling and instantiating than the database running it. On PostgreSQL each is one
statement in autocommit, prepared once per session (annotations/core/prepared.py): next item is one statement
of CTEs, submit one call of the annotations_label_submit function (labelling/submit_sql.py). SQLite
runs the same steps as plain statements in one transaction.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotations.core import prepared
from annotations.core.exceptions import AuditError, NotFoundError
from annotations.labelling import submit_sql
from annotations.labelling.final_label import item_outcome
from annotations.labelling.label_summary import label_summary, signature_pairs
from annotations.labelling.suggestions import SUGGESTION_COLUMN, suggestion_from_column
from annotations.models import (
    Adjudication,
    Assignment,
    Campaign,
    CampaignItem,
    Label,
    LabelCategory,
    LabelHistory,
    Prompt,
)
from inference.models import ModelEndpoint, Output

MAX_NOTE_CHARS = 5000
MAX_REASON_CHARS = 500
MAX_ACTIVE_SECONDS = 24 * 3600.0
_LEASE_ATTEMPTS = 8


@dataclass(frozen=True)
class Lease:
    """A live lease with what the annotator is shown of its item (read in the statement that leases it)."""

    id: int
    item_id: int
    expires_at: datetime
    prompt: str
    output: str
    model: str
    suggestion: dict | None = None  # the scorer's suggestion, when the campaign shows suggestions

    @property
    def pk(self) -> int:
        """The Assignment row's primary key."""
        return self.id


def items_refresh(*, item_ids) -> int:
    """Recompute items' label count, label summary, status and final label from their labels.

    The labels and adjudication rows are the truth; this rewrites what the items derive from them.
    Used where labels change outside the per-label hot path (a changed label, imports, test fixtures)
    and by `manage.py items_refresh` to repair items written some other way. Returns the number of
    items that changed. Call inside a transaction that holds the items' row locks when others may
    label them at the same time.
    """
    item_ids = list(item_ids)
    changed = 0
    for start in range(0, len(item_ids), _REFRESH_BATCH):
        batch = item_ids[start : start + _REFRESH_BATCH]
        items = list(CampaignItem.objects.filter(pk__in=batch).select_related("campaign"))
        pairs: dict[int, list[tuple[int, int]]] = {}
        for item_id, annotator_id, category_id in Label.objects.filter(item_id__in=batch).values_list(
            "item_id", "annotator_id", "category_id"
        ):
            pairs.setdefault(item_id, []).append((annotator_id, category_id))
        adjudicated = dict(
            Adjudication.objects.filter(item_id__in=batch).values_list("item_id", "category_id")
        )
        dirty = []
        for item in items:
            labels = pairs.get(item.pk, [])
            pattern, signature = label_summary(labels)
            outcome = item_outcome(
                category_ids=[c for _, c in labels],
                labels_needed=item.campaign.labels_per_output,
                final_rule=item.campaign.final_rule,
                adjudicated_category_id=adjudicated.get(item.pk),
            )
            new = (len(labels), pattern, signature, outcome.status, outcome.final_category_id)
            new += (outcome.final_source,)
            if new != tuple(getattr(item, field) for field in _DERIVED):
                for field, value in zip(_DERIVED, new, strict=True):
                    setattr(item, field, value)
                dirty.append(item)
        CampaignItem.objects.bulk_update(dirty, _DERIVED, batch_size=1000)
        changed += len(dirty)
    return changed


_REFRESH_BATCH = 2000
# What an item derives from its labels and adjudication (items_refresh rewrites exactly these).
_DERIVED = ("label_count", "label_pattern", "label_signature", "status", "final_category_id", "final_source")

# How many partially labelled items the next-item query looks at before it falls back to untouched ones.
# Partially labelled items come first ("nearest completion"); the ones an annotator already labelled stay
# in that list until others label them, so without a bound an annotator far ahead of the others would
# scan all of them on every request. 64 covers dozens of annotators working at once; each is an index probe.
PARTIAL_SCAN_DEPTH = 64

_ITEM = CampaignItem._meta.db_table
_LABEL = Label._meta.db_table
_ASSIGNMENT = Assignment._meta.db_table
_OPEN = CampaignItem.Status.OPEN.value
_ACTIVE = Assignment.Status.ACTIVE.value
_SKIPPED = Assignment.Status.SKIPPED.value
# Statuses are the models' own constants, written into the SQL so the planner sees them; every value that
# comes from a request or a row goes in as a named parameter.
# The annotator's live lease in this campaign other than the item they are on (`after`), if any.
_HELD = f"""SELECT a.id, a.item_id, a.expires_at FROM {_ASSIGNMENT} a JOIN {_ITEM} ci ON ci.id = a.item_id
WHERE a.annotator_id = %(annotator)s AND a.status = '{_ACTIVE}' AND a.expires_at > %(now)s
  AND ci.campaign_id = %(campaign)s AND a.item_id <> %(after)s
ORDER BY a.leased_at LIMIT 1"""  # noqa: S608 (table names and statuses from models; values are parameters)
_NOT_HELD = f"""NOT EXISTS (SELECT 1 FROM {_ASSIGNMENT} a WHERE a.item_id = ci.id
    AND ((a.annotator_id = %(annotator)s AND a.status = '{_SKIPPED}')
         OR (a.status = '{_ACTIVE}' AND a.expires_at > %(now)s)))"""  # noqa: S608
# Items already tried in this call: an array on PostgreSQL (one statement shape however many), a JSON
# list on SQLite.
_NOT_EXCLUDED = {
    "postgresql": "ci.id <> ALL(%(excluded)s::bigint[])",
    "sqlite": "ci.id NOT IN (SELECT value FROM json_each(%(excluded)s))",
}
# The partially labelled items are read in order from item_next_idx, at most `depth` of them, and each is
# checked as it comes: the scan stops at the first one I may lease (ORDER BY follows the subquery's order).
_PARTIAL_SQL = f"""SELECT ci.id
FROM (SELECT p.id, p.label_count, p.rank FROM {_ITEM} p
      WHERE p.campaign_id = %(campaign)s AND p.status = '{_OPEN}' AND p.label_count > 0
      ORDER BY p.label_count DESC, p.rank LIMIT %(depth)s) top
JOIN {_ITEM} ci ON ci.id = top.id
WHERE ci.status = '{_OPEN}'
  AND NOT EXISTS (SELECT 1 FROM {_LABEL} l WHERE l.item_id = ci.id AND l.annotator_id = %(annotator)s)
  AND {_NOT_HELD} AND {{excluded}} {{unless_held}}
ORDER BY top.label_count DESC, top.rank LIMIT 1 {{lock}}"""  # noqa: S608
_FRESH_SQL = f"""SELECT ci.id FROM {_ITEM} ci
WHERE ci.campaign_id = %(campaign)s AND ci.status = '{_OPEN}' AND ci.label_count = 0 AND {_NOT_HELD}
  AND {{excluded}} {{unless_held}}
ORDER BY ci.rank LIMIT 1 {{lock}}"""  # noqa: S608
# Both candidate queries in one statement; a WITH query is evaluated only as far as the outer query reads
# it, so once `partial` gives a row LIMIT 1 stops and `fresh` never runs.
_CANDIDATE_SQL = """WITH partial AS ({partial}), fresh AS ({fresh})
SELECT id FROM partial UNION ALL SELECT id FROM fresh LIMIT 1"""
_SQLITE_CANDIDATE = {"excluded": _NOT_EXCLUDED["sqlite"], "lock": "", "unless_held": ""}
_SQLITE_CANDIDATE_SQL = _CANDIDATE_SQL.format(
    partial=_PARTIAL_SQL.format(**_SQLITE_CANDIDATE), fresh=_FRESH_SQL.format(**_SQLITE_CANDIDATE)
)
# What the annotator is shown of item `ci`. Scalar subqueries on the item's own copies of its output's
# prompt and endpoint: PostgreSQL plans them in a fraction of the time a four-table join takes.
_PAYLOAD = f"""(SELECT p.text FROM {Prompt._meta.db_table} p WHERE p.id = ci.prompt_id),
    (SELECT o.text FROM {Output._meta.db_table} o WHERE o.id = ci.output_id),
    (SELECT e.name FROM {ModelEndpoint._meta.db_table} e WHERE e.id = ci.endpoint_id)"""  # noqa: S608
# With suggestions on, one more column: the suggestion scorer's (labelling/suggestions.py). Keyed by
# (vendor, suggestions on).
_PAYLOADS = {
    (vendor, suggest): _PAYLOAD + (f",\n    {column}" if suggest else "")
    for vendor, column in SUGGESTION_COLUMN.items()
    for suggest in (False, True)
}
_PAYLOAD_SQL = {
    key: f"SELECT {payload} FROM {_ITEM} ci WHERE ci.id = %(item)s"  # noqa: S608
    for key, payload in _PAYLOADS.items()
}
# The lease is written only if the item is still open and nobody has an active lease on it (live or run
# out): a fresh statement under the item's row lock, so it sees whatever the lock's previous holder wrote.
_LEASE_INSERT_SQL = f"""INSERT INTO {_ASSIGNMENT}
    (item_id, annotator_id, status, leased_at, expires_at, skip_reason)
SELECT %(item)s, %(annotator)s, '{_ACTIVE}', %(now)s, %(expires)s, ''
WHERE EXISTS (SELECT 1 FROM {_ITEM} WHERE id = %(item)s AND status = '{_OPEN}')
  AND NOT EXISTS (SELECT 1 FROM {_ASSIGNMENT} WHERE item_id = %(item)s AND status = '{_ACTIVE}')
RETURNING id"""  # noqa: S608
_LEASES_SQL = f"""SELECT ci.status, a.id, a.expires_at > %(now)s FROM {_ITEM} ci
LEFT JOIN {_ASSIGNMENT} a ON a.item_id = ci.id AND a.status = '{_ACTIVE}'
WHERE ci.id = %(item)s"""  # noqa: S608
# PostgreSQL: the whole of "next item" in one statement, prepared once per session (annotations.core.prepared)
# and run in autocommit, so one round trip and no transaction. The held lease if I have one; otherwise the
# candidate item, locked (SKIP LOCKED) until the statement ends, and my lease on it, returned with its
# texts. The candidate query's snapshot may predate a lease someone committed on that item a moment ago:
# the unique index of active leases (one per item) is the arbiter, and ON CONFLICT DO NOTHING hands the
# caller a candidate without a lease, which it then settles under a lock (_lease_take_over).
_PG_CANDIDATE = {
    "excluded": _NOT_EXCLUDED["postgresql"],
    "lock": "FOR UPDATE OF ci SKIP LOCKED",
    "unless_held": "AND NOT EXISTS (SELECT 1 FROM held)",
}
_NEXT_SQL = f"""WITH held AS ({_HELD}),
partial AS ({_PARTIAL_SQL.format(**_PG_CANDIDATE)}),
fresh AS ({_FRESH_SQL.format(**_PG_CANDIDATE)}),
candidate AS (SELECT id FROM partial UNION ALL SELECT id FROM fresh LIMIT 1),
lease AS (INSERT INTO {_ASSIGNMENT} (item_id, annotator_id, status, leased_at, expires_at, skip_reason)
    SELECT id, %(annotator)s::bigint, '{_ACTIVE}', %(now)s::timestamptz, %(expires)s::timestamptz, ''
    FROM candidate
    ON CONFLICT (item_id) WHERE status = '{_ACTIVE}' DO NOTHING RETURNING id, expires_at)
SELECT h.id, h.item_id, h.expires_at, {{payload}} FROM held h JOIN {_ITEM} ci ON ci.id = h.item_id
UNION ALL
SELECT lease.id, c.id, lease.expires_at, {{payload}}
FROM candidate c LEFT JOIN lease ON true JOIN {_ITEM} ci ON ci.id = c.id"""  # noqa: S608
# Suggestions off and on are two statements, so a campaign without suggestions runs exactly the one it
# always ran.
_NEXT_STATEMENTS = {
    suggest: prepared.Statement(
        "audit_next_item_suggest" if suggest else "audit_next_item",
        _NEXT_SQL.format(payload=_PAYLOADS["postgresql", suggest]),
    )
    for suggest in (False, True)
}


def _aware(value: datetime | str) -> datetime:
    """A datetime read with plain SQL as an aware one (SQLite gives text or naive UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def _next_row(*, params: dict, suggest: bool) -> tuple | None:
    """(lease id, item id, lease expiry, prompt, output, model[, suggestion]) of my held or newly leased item;
    None if none is left. The lease id is None when the candidate item could not be leased as it stood.
    """
    payload_sql = _PAYLOAD_SQL[connection.vendor, suggest]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _NEXT_STATEMENTS[suggest].execute(cursor, params)
            return cursor.fetchone()
        # SQLite: the same steps as separate statements in one transaction (BEGIN IMMEDIATE serialises
        # writers, so nobody leases in between).
        params = {**params, "excluded": json.dumps(params["excluded"])}
        for key in ("now", "expires"):
            params[key] = connection.ops.adapt_datetimefield_value(params[key])
        with transaction.atomic():
            cursor.execute(_HELD, params)
            held = cursor.fetchone()
            if held is not None:
                cursor.execute(payload_sql, {**params, "item": held[1]})
                return (*held, *cursor.fetchone())
            cursor.execute(_SQLITE_CANDIDATE_SQL, params)
            candidate = cursor.fetchone()
            if candidate is None:
                return None
            item = {**params, "item": candidate[0]}
            cursor.execute(_LEASE_INSERT_SQL, item)
            lease = cursor.fetchone()
            cursor.execute(payload_sql, item)
            return (lease and lease[0], candidate[0], params["expires"], *cursor.fetchone())


def _lease_take_over(*, params: dict, suggest: bool = False) -> tuple | None:
    """Lease item `params["item"]` if it is open and its only active leases ran out (marked expired);
    (lease id, prompt, output, model[, suggestion]), or None when it is complete or someone holds it.

    The slow path, under the item's row lock: fresh statements see whatever the lock's previous holder
    committed.
    """
    db = {
        "item": params["item"],
        "annotator": params["annotator"],
        "now": connection.ops.adapt_datetimefield_value(params["now"]),
        "expires": connection.ops.adapt_datetimefield_value(params["expires"]),
        "scorer": params.get("scorer"),
        "scheme": params.get("scheme"),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT status FROM {_ITEM} WHERE id = %(item)s"  # noqa: S608
            + (" FOR UPDATE" if connection.features.has_select_for_update else ""),
            db,
        )
        cursor.execute(_LEASES_SQL, db)
        rows = cursor.fetchall()
        leases = [(pk, is_live) for _status, pk, is_live in rows if pk is not None]
        if rows[0][0] != _OPEN or not leases or any(is_live for _pk, is_live in leases):
            return None
        # Leases that ran out: mark them, which frees the one-active-lease-per-item constraint.
        Assignment.objects.filter(pk__in=[pk for pk, _ in leases]).update(status=Assignment.Status.EXPIRED)
        cursor.execute(_LEASE_INSERT_SQL, db)
        lease = cursor.fetchone()
        cursor.execute(_PAYLOAD_SQL[connection.vendor, suggest], db)
        return (lease[0], *cursor.fetchone())


def assignment_next(*, campaign: Campaign, annotator, after_item_id: int | None = None) -> Lease | None:
    """Lease the next item to `annotator` (or return a live lease they already hold); None when none is left.

    `after_item_id` is the item the annotator is working on: a page prefetching the following item passes
    it, so an annotator holds at most two live leases (the current item and the prefetched one). Callers
    must have checked that the annotator may label `campaign`.

    Order: partially labelled items (most labels first), then untouched ones, each in the campaign's fixed
    random order; items I labelled or skipped, and items someone holds, are left out. The scans are two
    index range scans that stop at the first row (item_next_idx), the untouched items' scan only when no
    partial item was found. On PostgreSQL rows another annotator is locking are skipped (SKIP LOCKED), and
    the status test sits on the locked row itself: when another transaction completed the item after the
    statement's snapshot, PostgreSQL re-checks the newest version of the locked row and drops it.

    When the campaign shows suggestions the lease carries the item's (`labelling/suggestions.py`), read
    in the same statement.
    """
    suggest = campaign.show_suggestions and campaign.suggestion_scorer_id is not None
    now = timezone.now()
    expires_at = now + timedelta(minutes=campaign.lease_minutes)
    params = {
        "annotator": annotator.pk,
        "campaign": campaign.pk,
        "now": now,
        "expires": expires_at,
        "after": after_item_id or 0,
        "excluded": [after_item_id] if after_item_id else [],
        "depth": PARTIAL_SCAN_DEPTH,
        "scorer": campaign.suggestion_scorer_id,
        "scheme": campaign.scheme_id,
    }
    for _attempt in range(_LEASE_ATTEMPTS):
        row = _next_row(params=params, suggest=suggest)
        if row is None:
            return None
        lease_id, item_id, until, *texts = row
        if lease_id is None:
            # Someone leased or completed it after the statement's snapshot, or a lease on it ran out.
            taken = _lease_take_over(params={**params, "item": item_id}, suggest=suggest)
            if taken is None:
                params["excluded"] = [*params["excluded"], item_id]
                continue
            lease_id, *texts = taken
            until = expires_at
        prompt, output, model, *suggestion = texts
        suggested = suggestion_from_column(suggestion[0]) if suggestion else None
        return Lease(lease_id, item_id, _aware(until), prompt, output, model, suggested)
    raise AuditError("Too many annotators are asking for items at once; please try again.", code="busy")


def _unknown_category(key: str) -> AuditError:
    return AuditError(
        f"Unknown category {key!r} for this campaign's scheme.",
        errors=[{"row": None, "field": "category", "message": f"unknown category {key!r}"}],
    )


def _category(*, campaign: Campaign, key: str) -> LabelCategory:
    try:
        return LabelCategory.objects.get(scheme_id=campaign.scheme_id, key=key)
    except LabelCategory.DoesNotExist:
        raise _unknown_category(key) from None


def _clean_text(value: str, *, field: str, limit: int) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise AuditError(
            f"The {field} is too long ({len(value)} characters; at most {limit}).",
            errors=[{"row": None, "field": field, "message": f"at most {limit} characters"}],
        )
    return value


def _clean_seconds(value: float) -> float:
    if not 0 <= value <= MAX_ACTIVE_SECONDS:
        raise AuditError(
            f"active_seconds must be between 0 and {MAX_ACTIVE_SECONDS:.0f}.",
            errors=[{"row": None, "field": "active_seconds", "message": "out of range"}],
        )
    return value


def _locked_item(*, campaign: Campaign, item_id: int) -> CampaignItem:
    try:
        return CampaignItem.objects.select_for_update().get(pk=item_id, campaign=campaign)
    except CampaignItem.DoesNotExist:
        raise NotFoundError(f"Item {item_id} is not part of this campaign.") from None


def _not_held_error(*, item_id: int, annotator) -> AuditError:
    """Why an annotator cannot label an item they do not hold (only computed on this error path)."""
    if Label.objects.filter(item_id=item_id, annotator=annotator).exists():
        return AuditError(
            "You have already labelled this item; change your label from your previous items.",
            code="already_labelled",
        )
    if Assignment.objects.filter(
        item_id=item_id, annotator=annotator, status=Assignment.Status.EXPIRED
    ).exists():
        return AuditError(
            "Your lease on this item expired and it went to another annotator.", code="lease_expired"
        )
    return AuditError("You do not hold this item: ask for the next item.", code="not_held")


# Submit on PostgreSQL: one call of annotations_label_submit (labelling/submit_sql.py), in autocommit.
_SUBMIT_STATEMENT = prepared.Statement(
    "audit_submit_label",
    f"""SELECT result, label_id, category_id FROM {submit_sql.FUNCTION}(%(item)s, %(campaign)s, %(scheme)s,
    %(category)s, %(annotator)s, %(note)s, %(seconds)s, %(now)s, %(needed)s, %(majority)s)""",  # noqa: S608
)
# Submit elsewhere (SQLite): the same steps from Python in one transaction. A read of the item's summary,
# the category and my lease, then the writes: my lease, if still active, is marked done, and only then the
# label, its history row and the item's new count, summary and status are written.
_SUBMIT_READ = f"""SELECT ci.status, ci.label_count, ci.label_signature,
    (SELECT c.id FROM {LabelCategory._meta.db_table} c
     WHERE c.scheme_id = %(scheme)s AND c.key = %(category)s),
    (SELECT a.id FROM {_ASSIGNMENT} a
     WHERE a.item_id = ci.id AND a.annotator_id = %(annotator)s AND a.status = '{_ACTIVE}')
FROM {_ITEM} ci WHERE ci.id = %(item)s AND ci.campaign_id = %(campaign)s"""  # noqa: S608
_SUBMIT_WRITES = (
    f"""UPDATE {_ASSIGNMENT} SET status = '{Assignment.Status.DONE.value}'
WHERE id = %(lease)s AND status = '{_ACTIVE}'""",  # noqa: S608
    f"""INSERT INTO {_LABEL}
    (item_id, annotator_id, category_id, note, active_seconds, created_at, updated_at)
VALUES (%(item)s, %(annotator)s, %(category)s, %(note)s, %(seconds)s, %(now)s, %(now)s) RETURNING id""",  # noqa: S608
    f"""INSERT INTO {LabelHistory._meta.db_table}
    (label_id, changed_by_id, changed_at, old_category_id, new_category_id, old_note, new_note)
VALUES (%(label)s, %(annotator)s, %(now)s, NULL, %(category)s, '', %(note)s)""",  # noqa: S608
    f"""UPDATE {_ITEM} SET label_count = %(count)s, label_pattern = %(pattern)s,
    label_signature = %(signature)s, status = %(status)s, final_category_id = %(final)s,
    final_source = %(source)s WHERE id = %(item)s""",  # noqa: S608
)


def _submit_in_python(*, campaign: Campaign, annotator, params: dict) -> tuple[str, int | None, int | None]:
    """The SQLite submit: (result code, label id, category id), as annotations_label_submit returns."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SUBMIT_READ, params)
        row = cursor.fetchone()
        if row is None:
            return "not_found", None, None
        status, _count, signature, category_id, lease_id = row
        if category_id is None:
            return "unknown_category", None, None
        if status != CampaignItem.Status.OPEN:
            return "complete", None, category_id
        if lease_id is None:
            return "not_held", None, category_id
        # The item's labels are its signature's plus this one: no need to read the label rows back.
        pairs = [*signature_pairs(signature), (annotator.pk, category_id)]
        pattern, signature = label_summary(pairs)
        outcome = item_outcome(
            category_ids=[c for _, c in pairs],
            labels_needed=campaign.labels_per_output,
            final_rule=campaign.final_rule,
        )
        params = {**params, "lease": lease_id, "category": category_id, "count": len(pairs)}
        params.update(pattern=pattern, signature=signature, status=outcome.status)
        params.update(final=outcome.final_category_id, source=outcome.final_source)
        params["now"] = connection.ops.adapt_datetimefield_value(params["now"])
        cursor.execute(_SUBMIT_WRITES[0], params)
        if cursor.rowcount != 1:
            return "not_held", None, category_id
        cursor.execute(_SUBMIT_WRITES[1], params)
        label_id = cursor.fetchone()[0]
        cursor.execute(_SUBMIT_WRITES[2], {**params, "label": label_id})
        cursor.execute(_SUBMIT_WRITES[3], params)
        return "ok", label_id, category_id


def label_submit(
    *,
    campaign: Campaign,
    annotator,
    item_id: int,
    category_key: str,
    note: str = "",
    active_seconds: float = 0.0,
) -> Label:
    """Record the annotator's label for an item they hold, and resolve the item once it has enough labels.

    A lease past its expiry still counts until someone else leases the item (which marks it expired).
    """
    note = _clean_text(note, field="note", limit=MAX_NOTE_CHARS)
    active_seconds = _clean_seconds(active_seconds)
    now = timezone.now()
    params = {
        "item": item_id,
        "campaign": campaign.pk,
        "scheme": campaign.scheme_id,
        "category": category_key,
        "annotator": annotator.pk,
        "note": note,
        "seconds": active_seconds,
        "now": now,
        "needed": campaign.labels_per_output,
        "majority": campaign.final_rule == Campaign.FinalRule.MAJORITY,
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            _SUBMIT_STATEMENT.execute(cursor, params)
            result, label_id, category_id = cursor.fetchone()
    else:
        result, label_id, category_id = _submit_in_python(
            campaign=campaign, annotator=annotator, params=params
        )
    if result == "not_found":
        raise NotFoundError(f"Item {item_id} is not part of this campaign.")
    if result == "unknown_category":
        raise _unknown_category(category_key)
    if result == "complete":
        raise AuditError("This item already has all the labels it needs.", code="complete")
    if result == "not_held":
        raise _not_held_error(item_id=item_id, annotator=annotator)
    return Label(
        id=label_id,
        item_id=item_id,
        annotator=annotator,
        category_id=category_id,
        note=note,
        active_seconds=active_seconds,
        created_at=now,
        updated_at=now,
    )


def label_change(
    *,
    campaign: Campaign,
    annotator,
    item_id: int,
    category_key: str,
    note: str | None = None,
    active_seconds: float = 0.0,
) -> Label:
    """Change the annotator's own label (history keeps the old value); re-resolves a completed item."""
    note = None if note is None else _clean_text(note, field="note", limit=MAX_NOTE_CHARS)
    active_seconds = _clean_seconds(active_seconds)
    with transaction.atomic():
        item = _locked_item(campaign=campaign, item_id=item_id)
        if item.status == CampaignItem.Status.ADJUDICATED:
            raise AuditError(
                "This item has been adjudicated; its labels can no longer change.", code="closed"
            )
        try:
            label = Label.objects.select_for_update().get(item=item, annotator=annotator)
        except Label.DoesNotExist:
            raise NotFoundError("You have not labelled this item.") from None
        category = _category(campaign=campaign, key=category_key)
        new_note = label.note if note is None else note
        if category.pk == label.category_id and new_note == label.note:
            return label
        LabelHistory.objects.create(
            label=label,
            changed_by=annotator,
            old_category_id=label.category_id,
            new_category=category,
            old_note=label.note,
            new_note=new_note,
        )
        label.category = category
        label.note = new_note
        label.active_seconds += active_seconds
        label.save(update_fields=["category", "note", "active_seconds", "updated_at"])
        items_refresh(item_ids=[item.pk])  # the summary always; the status once the item was complete
    return label


def assignment_skip(*, campaign: Campaign, annotator, item_id: int, reason: str) -> Assignment:
    """Give back a held item with a reason; it returns to the pool, never to be offered to me again."""
    reason = _clean_text(reason, field="reason", limit=MAX_REASON_CHARS)
    if not reason:
        raise AuditError(
            "Say why you skip this item.",
            errors=[{"row": None, "field": "reason", "message": "required"}],
        )
    with transaction.atomic():
        item = _locked_item(campaign=campaign, item_id=item_id)
        lease = Assignment.objects.filter(
            item=item, annotator=annotator, status=Assignment.Status.ACTIVE
        ).first()
        if lease is None:
            raise AuditError("You do not hold this item.", code="not_held")
        lease.status = Assignment.Status.SKIPPED
        lease.skip_reason = reason
        lease.save(update_fields=["status", "skip_reason"])
    return lease


def item_adjudicate(
    *, campaign: Campaign, adjudicator, item_id: int, category_key: str, reason: str
) -> Adjudication:
    """Set the final label of a disputed (or re-adjudicate an adjudicated) item, with a reason."""
    reason = _clean_text(reason, field="reason", limit=MAX_NOTE_CHARS)
    if not reason:
        raise AuditError(
            "Give a reason for the final label.",
            errors=[{"row": None, "field": "reason", "message": "required"}],
        )
    with transaction.atomic():
        item = _locked_item(campaign=campaign, item_id=item_id)
        if item.status not in (CampaignItem.Status.DISPUTED, CampaignItem.Status.ADJUDICATED):
            raise AuditError("Only disputed items are adjudicated.", code="not_disputed")
        category = _category(campaign=campaign, key=category_key)
        adjudication, _ = Adjudication.objects.update_or_create(
            item=item, defaults={"category": category, "adjudicator": adjudicator, "reason": reason}
        )
        outcome = item_outcome(
            category_ids=[],  # an adjudication decides, whatever the labels say
            labels_needed=campaign.labels_per_output,
            final_rule=campaign.final_rule,
            adjudicated_category_id=category.pk,
        )
        item.status, item.final_category_id = outcome.status, outcome.final_category_id
        item.final_source = outcome.final_source
        item.save(update_fields=["status", "final_category", "final_source"])
    return adjudication
