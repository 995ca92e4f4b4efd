"""Labelling: leasing the next item, submitting, skipping and changing labels, adjudicating.

Concurrency rule: every write that decides who holds an item, or how many labels it has, happens while
holding the item's row lock (SELECT ... FOR UPDATE). On PostgreSQL the next-item query skips rows another
annotator is locking (SKIP LOCKED) and then re-checks the leases in a fresh statement under the lock, so
two annotators never hold the same item and no item gets more labels than the campaign needs. On SQLite
the settings open every transaction with BEGIN IMMEDIATE, which serialises writers.

The hot path (next item, submit) is plain SQL that runs on both databases: it is the per-label cost on a
busy campaign, and the ORM spent more CPU compiling and instantiating than the database running it. On
PostgreSQL each call's writes, and the texts an annotator is shown, go in one statement (data-modifying
CTEs); SQLite runs the same writes as plain statements with the same values.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotations import tallies
from annotations.exceptions import AuditError, NotFoundError
from annotations.label_summary import label_summary, signature_pairs
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
from annotations.stats.disparity import resolve_final_label
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

    @property
    def pk(self) -> int:
        """The Assignment row's primary key."""
        return self.id


@dataclass(frozen=True)
class ItemOutcome:
    """An item's status and final label after its labels changed."""

    status: str
    final_category_id: int | None
    final_source: str


def item_outcome(*, category_ids: list[int], labels_needed: int, final_rule: str) -> ItemOutcome:
    """Resolve an item from its labels' category ids: open, unanimous, majority (if allowed) or disputed.

    The rule itself is the statistics package's `resolve_final_label`, so dashboards and labelling agree.
    """
    if len(category_ids) < labels_needed:
        return ItemOutcome(CampaignItem.Status.OPEN, None, CampaignItem.FinalSource.NONE)
    counts = Counter(category_ids)
    categories = sorted(counts)
    rule = "majority" if final_rule == Campaign.FinalRule.MAJORITY else "unanimous"
    index = resolve_final_label([counts[c] for c in categories], rule=rule)
    if index is None:
        return ItemOutcome(CampaignItem.Status.DISPUTED, None, CampaignItem.FinalSource.NONE)
    source = CampaignItem.FinalSource.UNANIMOUS if len(categories) == 1 else CampaignItem.FinalSource.MAJORITY
    return ItemOutcome(CampaignItem.Status.COMPLETE, categories[index], source)


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
            if item.pk in adjudicated:
                outcome = ItemOutcome(
                    CampaignItem.Status.ADJUDICATED,
                    adjudicated[item.pk],
                    CampaignItem.FinalSource.ADJUDICATED,
                )
            else:
                outcome = item_outcome(
                    category_ids=[c for _, c in labels],
                    labels_needed=item.campaign.labels_per_output,
                    final_rule=item.campaign.final_rule,
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


def tallies_rebuild(*, campaign_id: int | None = None) -> None:
    """Recount a campaign's (or every campaign's) dashboard tallies from its items (PostgreSQL only).

    The triggers keep them; this is for repairs. Item writes wait meanwhile (a table lock).
    """
    if connection.vendor != "postgresql":
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for statement, params in zip(*tallies.rebuild_statements(campaign_id), strict=True):
            cursor.execute(statement, params)


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
_NOT_HELD = f"""NOT EXISTS (SELECT 1 FROM {_ASSIGNMENT} a WHERE a.item_id = ci.id
    AND ((a.annotator_id = %s AND a.status = %s) OR (a.status = %s AND a.expires_at > %s)))"""  # noqa: S608 (table names from models; values are parameters)
_PARTIAL_SQL = f"""SELECT ci.id FROM {_ITEM} ci
WHERE ci.id IN (SELECT p.id FROM {_ITEM} p WHERE p.campaign_id = %s AND p.status = %s AND p.label_count > 0
                ORDER BY p.label_count DESC, p.rank LIMIT %s)
  AND ci.status = %s AND NOT EXISTS (SELECT 1 FROM {_LABEL} l WHERE l.item_id = ci.id AND l.annotator_id = %s)
  AND {_NOT_HELD} {{excluded}}
ORDER BY ci.label_count DESC, ci.rank LIMIT 1 {{lock}}"""  # noqa: S608
# What the annotator is shown of item `ci`. Scalar subqueries on the item's own copies of its output's
# prompt and endpoint: PostgreSQL plans them in a fraction of the time a four-table join takes.
_PAYLOAD = f"""(SELECT p.text FROM {Prompt._meta.db_table} p WHERE p.id = ci.prompt_id),
    (SELECT o.text FROM {Output._meta.db_table} o WHERE o.id = ci.output_id),
    (SELECT e.name FROM {ModelEndpoint._meta.db_table} e WHERE e.id = ci.endpoint_id)"""  # noqa: S608
_PAYLOAD_SQL = f"SELECT {_PAYLOAD} FROM {_ITEM} ci WHERE ci.id = %s"  # noqa: S608
_HELD_SQL = f"""SELECT a.id, a.item_id, a.expires_at FROM {_ASSIGNMENT} a JOIN {_ITEM} ci ON ci.id = a.item_id
WHERE a.annotator_id = %s AND a.status = %s AND a.expires_at > %s AND ci.campaign_id = %s AND a.item_id <> %s
ORDER BY a.leased_at LIMIT 1"""  # noqa: S608
_LEASES_SQL = f"""SELECT ci.status, a.id, a.expires_at > %s FROM {_ITEM} ci
LEFT JOIN {_ASSIGNMENT} a ON a.item_id = ci.id AND a.status = %s WHERE ci.id = %s"""  # noqa: S608
# The lease is written only if the item is still open and nobody has an active lease on it (live or run
# out): a fresh statement under the item's row lock, so it sees whatever the lock's previous holder wrote.
_LEASE_INSERT_SQL = f"""INSERT INTO {_ASSIGNMENT}
    (item_id, annotator_id, status, leased_at, expires_at, skip_reason) SELECT %s, %s, %s, %s, %s, ''
WHERE EXISTS (SELECT 1 FROM {_ITEM} WHERE id = %s AND status = %s)
  AND NOT EXISTS (SELECT 1 FROM {_ASSIGNMENT} WHERE item_id = %s AND status = %s)
RETURNING id"""  # noqa: S608
# PostgreSQL: the same insert and the item's texts in one statement.
_LEASE_PAYLOAD_SQL = f"""WITH lease AS ({_LEASE_INSERT_SQL})
SELECT lease.id, {_PAYLOAD} FROM lease, {_ITEM} ci WHERE ci.id = %s"""  # noqa: S608
_SUBMIT_SQL = f"""SELECT ci.status, ci.label_count, ci.label_signature,
    (SELECT c.id FROM {LabelCategory._meta.db_table} c WHERE c.scheme_id = %s AND c.key = %s),
    (SELECT a.id FROM {_ASSIGNMENT} a WHERE a.item_id = ci.id AND a.annotator_id = %s AND a.status = %s)
FROM {_ITEM} ci WHERE ci.id = %s AND ci.campaign_id = %s {{lock}}"""  # noqa: S608
# Submit's writes, run as fresh statements under the item's row lock: my lease, if still active, is marked
# done, and only then the label, its history row and the item's new count, summary and status are written.
_LEASE_DONE = f"UPDATE {_ASSIGNMENT} SET status = %s WHERE id = %s AND status = %s"  # noqa: S608
_LABEL_INSERT = f"""INSERT INTO {_LABEL}
    (item_id, annotator_id, category_id, note, active_seconds, created_at, updated_at)"""
_HISTORY_INSERT = f"""INSERT INTO {LabelHistory._meta.db_table} (label_id, changed_by_id, changed_at,
    old_category_id, new_category_id, old_note, new_note)"""
_ITEM_UPDATE = f"""UPDATE {_ITEM} SET label_count = %s, label_pattern = %s, label_signature = %s, status = %s,
    final_category_id = %s, final_source = %s WHERE id = %s"""  # noqa: S608
_SUBMIT_WRITES_PLAIN = (
    _LEASE_DONE,
    f"{_LABEL_INSERT} VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
    f"{_HISTORY_INSERT} VALUES (%s, %s, %s, NULL, %s, '', %s)",
    _ITEM_UPDATE,
)
# PostgreSQL: the same writes as one statement; nothing is written unless the lease update found my lease.
_SUBMIT_WRITES_SQL = f"""WITH lease AS ({_LEASE_DONE} RETURNING id),
label AS ({_LABEL_INSERT} SELECT %s, %s, %s, %s, %s, %s, %s FROM lease RETURNING id),
history AS ({_HISTORY_INSERT} SELECT label.id, %s, %s, NULL, %s, '', %s FROM label),
item AS ({_ITEM_UPDATE} AND EXISTS (SELECT 1 FROM lease))
SELECT id FROM label"""  # noqa: S608
# Both candidate queries in one statement; a WITH query is evaluated only as far as the outer query reads
# it, so once `partial` gives a row LIMIT 1 stops and `fresh` never runs.
_CANDIDATE_SQL = """WITH partial AS ({partial}), fresh AS ({fresh})
SELECT id FROM partial UNION ALL SELECT id FROM fresh LIMIT 1"""
_FRESH_SQL = f"""SELECT ci.id FROM {_ITEM} ci
WHERE ci.campaign_id = %s AND ci.status = %s AND ci.label_count = 0 AND {_NOT_HELD} {{excluded}}
ORDER BY ci.rank LIMIT 1 {{lock}}"""  # noqa: S608


def _candidate_item_id(*, campaign: Campaign, annotator, now, excluded: list[int]) -> int | None:
    """Lock and return the next open item the annotator may lease (None if none), skipping locked rows.

    Order: partially labelled items (most labels first), then untouched ones, each in the campaign's fixed
    random order. Items I labelled or skipped, and items someone holds, are left out. Raw SQL because this
    is the hot path: two index range scans that stop at the first row (item_next_idx), no ORM compile, in
    one statement: the untouched items' scan (and its locks) only runs when no partial item was found.
    The status test sits on the locked row `ci` itself: when another transaction completed the item after
    this statement's snapshot, PostgreSQL re-checks the locked row's newest version and drops it.
    """
    lock = "FOR UPDATE OF ci SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    not_in = f"AND ci.id NOT IN ({', '.join(['%s'] * len(excluded))})" if excluded else ""
    not_held = [annotator.pk, Assignment.Status.SKIPPED, Assignment.Status.ACTIVE]
    not_held.append(connection.ops.adapt_datetimefield_value(now))
    open_ = CampaignItem.Status.OPEN
    partial = _PARTIAL_SQL.format(excluded=not_in, lock=lock)
    fresh = _FRESH_SQL.format(excluded=not_in, lock=lock)
    params = [campaign.pk, open_, PARTIAL_SCAN_DEPTH, open_, annotator.pk, *not_held, *excluded]
    params += [campaign.pk, open_, *not_held, *excluded]
    with connection.cursor() as cursor:
        cursor.execute(_CANDIDATE_SQL.format(partial=partial, fresh=fresh), params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def _aware(value: datetime | str) -> datetime:
    """A datetime read with plain SQL as an aware one (SQLite gives text or naive UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def _lease_insert(*, cursor, item_id: int, annotator, now, expires_at) -> tuple | None:
    """Lease the item if it is open and nobody holds it: (lease id, prompt, output, model) or None.

    One statement on PostgreSQL (insert and texts together); two on databases without data-modifying CTEs.
    """
    db_now = connection.ops.adapt_datetimefield_value(now)
    db_expires = connection.ops.adapt_datetimefield_value(expires_at)
    active, open_ = Assignment.Status.ACTIVE, CampaignItem.Status.OPEN
    params = [item_id, annotator.pk, active, db_now, db_expires, item_id, open_, item_id, active]
    if connection.vendor == "postgresql":
        cursor.execute(_LEASE_PAYLOAD_SQL, [*params, item_id])
        return cursor.fetchone()
    cursor.execute(_LEASE_INSERT_SQL, params)
    row = cursor.fetchone()
    if row is None:
        return None
    cursor.execute(_PAYLOAD_SQL, [item_id])
    return (row[0], *cursor.fetchone())


def assignment_next(*, campaign: Campaign, annotator, after_item_id: int | None = None) -> Lease | None:
    """Lease the next item to `annotator` (or return a live lease they already hold); None when none is left.

    `after_item_id` is the item the annotator is working on: a page prefetching the following item passes
    it, so an annotator holds at most two live leases (the current item and the prefetched one). Callers
    must have checked that the annotator may label `campaign`.
    """
    now = timezone.now()
    db_now = connection.ops.adapt_datetimefield_value(now)
    expires_at = now + timedelta(minutes=campaign.lease_minutes)
    active = Assignment.Status.ACTIVE
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_HELD_SQL, [annotator.pk, active, db_now, campaign.pk, after_item_id or 0])
        row = cursor.fetchone()
        if row is not None:
            lease_id, item_id, held_until = row
            cursor.execute(_PAYLOAD_SQL, [item_id])
            return Lease(lease_id, item_id, _aware(held_until), *cursor.fetchone())
        excluded: list[int] = [after_item_id] if after_item_id else []
        for _attempt in range(_LEASE_ATTEMPTS):
            item_id = _candidate_item_id(campaign=campaign, annotator=annotator, now=now, excluded=excluded)
            if item_id is None:
                return None
            # We hold the item's row lock and every lease and label is written under it: the insert is a
            # fresh statement that sees whatever the previous holder of the lock committed (the candidate
            # query's snapshot may not), so a lease taken or a label completing the item meanwhile is noticed.
            row = _lease_insert(
                cursor=cursor, item_id=item_id, annotator=annotator, now=now, expires_at=expires_at
            )
            if row is None:
                # Someone completed or leased it, or a lease on it ran out: look which, under the same lock.
                cursor.execute(_LEASES_SQL, [db_now, active, item_id])
                rows = cursor.fetchall()
                leases = [(pk, is_live) for _status, pk, is_live in rows if pk is not None]
                if (
                    rows[0][0] != CampaignItem.Status.OPEN
                    or any(is_live for _pk, is_live in leases)
                    or not leases
                ):
                    excluded.append(item_id)
                    continue
                # Leases that ran out: mark them, which also frees the one-active-lease constraint.
                Assignment.objects.filter(pk__in=[pk for pk, _ in leases]).update(
                    status=Assignment.Status.EXPIRED
                )
                row = _lease_insert(
                    cursor=cursor, item_id=item_id, annotator=annotator, now=now, expires_at=expires_at
                )
            return Lease(row[0], item_id, expires_at, *row[1:])
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
    lock = "FOR UPDATE OF ci" if connection.features.has_select_for_update_of else ""
    with transaction.atomic():
        # One statement locks the item and reads the category and my lease (the hot path).
        with connection.cursor() as cursor:
            cursor.execute(
                _SUBMIT_SQL.format(lock=lock),
                [
                    campaign.scheme_id,
                    category_key,
                    annotator.pk,
                    Assignment.Status.ACTIVE,
                    item_id,
                    campaign.pk,
                ],
            )
            row = cursor.fetchone()
        if row is None:
            raise NotFoundError(f"Item {item_id} is not part of this campaign.")
        status, label_count, signature, category_id, lease_id = row
        if category_id is None:
            raise _unknown_category(category_key)
        if status != CampaignItem.Status.OPEN:
            raise AuditError("This item already has all the labels it needs.", code="complete")
        if lease_id is None:
            raise _not_held_error(item_id=item_id, annotator=annotator)
        label_count += 1
        # The item's labels are its signature's plus this one: no need to read the label rows back.
        pairs = [*signature_pairs(signature), (annotator.pk, category_id)]
        pattern, signature = label_summary(pairs)
        outcome = ItemOutcome(status, None, CampaignItem.FinalSource.NONE)
        if label_count >= campaign.labels_per_output:
            outcome = item_outcome(
                category_ids=[c for _, c in pairs],
                labels_needed=campaign.labels_per_output,
                final_rule=campaign.final_rule,
            )
        # Fresh statements: the lease read above comes from the first statement's snapshot, taken before we
        # waited for the lock, and someone may have re-leased the item after ours ran out in the meantime.
        db_now = connection.ops.adapt_datetimefield_value(now)
        lease = [Assignment.Status.DONE, lease_id, Assignment.Status.ACTIVE]
        label = [item_id, annotator.pk, category_id, note, active_seconds, db_now, db_now]
        history = [annotator.pk, db_now, category_id, note]
        item = [label_count, pattern, signature, outcome.status, outcome.final_category_id]
        item += [outcome.final_source, item_id]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(_SUBMIT_WRITES_SQL, [*lease, *label, *history, *item])
                row = cursor.fetchone()
            else:
                cursor.execute(_SUBMIT_WRITES_PLAIN[0], lease)
                row = None
                if cursor.rowcount == 1:
                    cursor.execute(_SUBMIT_WRITES_PLAIN[1], label)
                    row = cursor.fetchone()
                    cursor.execute(_SUBMIT_WRITES_PLAIN[2], [row[0], *history])
                    cursor.execute(_SUBMIT_WRITES_PLAIN[3], item)
        if row is None:
            raise _not_held_error(item_id=item_id, annotator=annotator)
    return Label(
        id=row[0],
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
        item.status = CampaignItem.Status.ADJUDICATED
        item.final_category = category
        item.final_source = CampaignItem.FinalSource.ADJUDICATED
        item.save(update_fields=["status", "final_category", "final_source"])
    return adjudication
