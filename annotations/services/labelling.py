"""Labelling: leasing the next item, submitting, skipping and changing labels, adjudicating.

Concurrency rule: every write that decides who holds an item, or how many labels it has, happens while
holding the item's row lock (SELECT ... FOR UPDATE). On PostgreSQL the next-item query skips rows another
annotator is locking (SKIP LOCKED) and then re-checks the leases in a fresh statement under the lock, so
two annotators never hold the same item and no item gets more labels than the campaign needs. On SQLite
the settings open every transaction with BEGIN IMMEDIATE, which serialises writers.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotations.exceptions import AuditError, NotFoundError
from annotations.models import (
    Adjudication,
    Assignment,
    Campaign,
    CampaignItem,
    Label,
    LabelCategory,
    LabelHistory,
)

MAX_NOTE_CHARS = 5000
MAX_REASON_CHARS = 500
MAX_ACTIVE_SECONDS = 24 * 3600.0
_LEASE_ATTEMPTS = 8
_PAYLOAD_RELATED = ("output__prompt", "output__endpoint")


@dataclass(frozen=True)
class ItemOutcome:
    """An item's status and final label after its labels changed."""

    status: str
    final_category_id: int | None
    final_source: str


def item_outcome(*, category_ids: list[int], labels_needed: int, final_rule: str) -> ItemOutcome:
    """Resolve an item from its labels' category ids: open, unanimous, majority (if allowed) or disputed."""
    open_ = ItemOutcome(CampaignItem.Status.OPEN, None, CampaignItem.FinalSource.NONE)
    if len(category_ids) < labels_needed:
        return open_
    counts = Counter(category_ids).most_common()
    top, votes = counts[0]
    if len(counts) == 1:
        return ItemOutcome(CampaignItem.Status.COMPLETE, top, CampaignItem.FinalSource.UNANIMOUS)
    if final_rule == Campaign.FinalRule.MAJORITY and votes * 2 > len(category_ids):
        return ItemOutcome(CampaignItem.Status.COMPLETE, top, CampaignItem.FinalSource.MAJORITY)
    return ItemOutcome(CampaignItem.Status.DISPUTED, None, CampaignItem.FinalSource.NONE)


def _live_lease(now) -> Q:
    return Q(status=Assignment.Status.ACTIVE, expires_at__gt=now)


# How many partially labelled items the next-item query looks at before it falls back to untouched ones.
# Partially labelled items come first ("nearest completion"); the ones an annotator already labelled stay
# in that list until others label them, so without a bound an annotator far ahead of the others would
# scan all of them on every request.
PARTIAL_SCAN_DEPTH = 256

_ITEM = CampaignItem._meta.db_table
_LABEL = Label._meta.db_table
_ASSIGNMENT = Assignment._meta.db_table
_NOT_HELD = f"""NOT EXISTS (SELECT 1 FROM {_ASSIGNMENT} a WHERE a.item_id = ci.id
    AND ((a.annotator_id = %s AND a.status = %s) OR (a.status = %s AND a.expires_at > %s)))"""  # noqa: S608 (table names from models; values are parameters)
_PARTIAL_SQL = f"""SELECT ci.id FROM {_ITEM} ci
WHERE ci.id IN (SELECT p.id FROM {_ITEM} p WHERE p.campaign_id = %s AND p.status = %s AND p.label_count > 0
                ORDER BY p.label_count DESC, p.rank LIMIT %s)
  AND NOT EXISTS (SELECT 1 FROM {_LABEL} l WHERE l.item_id = ci.id AND l.annotator_id = %s)
  AND {_NOT_HELD} {{excluded}}
ORDER BY ci.label_count DESC, ci.rank LIMIT 1 {{lock}}"""  # noqa: S608
_FRESH_SQL = f"""SELECT ci.id FROM {_ITEM} ci
WHERE ci.campaign_id = %s AND ci.status = %s AND ci.label_count = 0 AND {_NOT_HELD} {{excluded}}
ORDER BY ci.rank LIMIT 1 {{lock}}"""  # noqa: S608


def _candidate_item_id(*, campaign: Campaign, annotator, now, excluded: list[int]) -> int | None:
    """Lock and return the next open item the annotator may lease (None if none), skipping locked rows.

    Order: partially labelled items (most labels first), then untouched ones, each in the campaign's fixed
    random order. Items I labelled or skipped, and items someone holds, are left out. Raw SQL because this
    is the hot path: two index range scans that stop at the first row (item_next_idx), no ORM compile.
    """
    lock = "FOR UPDATE OF ci SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    not_in = f"AND ci.id NOT IN ({', '.join(['%s'] * len(excluded))})" if excluded else ""
    not_held = [annotator.pk, Assignment.Status.SKIPPED, Assignment.Status.ACTIVE]
    not_held.append(connection.ops.adapt_datetimefield_value(now))
    open_ = CampaignItem.Status.OPEN
    queries = [
        (
            _PARTIAL_SQL.format(excluded=not_in, lock=lock),
            [campaign.pk, open_, PARTIAL_SCAN_DEPTH, annotator.pk, *not_held, *excluded],
        ),
        (_FRESH_SQL.format(excluded=not_in, lock=lock), [campaign.pk, open_, *not_held, *excluded]),
    ]
    with connection.cursor() as cursor:
        for sql, params in queries:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            if row is not None:
                return row[0]
    return None


def assignment_next(*, campaign: Campaign, annotator, after_item_id: int | None = None) -> Assignment | None:
    """Lease the next item to `annotator` (or return a live lease they already hold); None when none is left.

    `after_item_id` is the item the annotator is working on: a page prefetching the following item passes
    it, so an annotator holds at most two live leases (the current item and the prefetched one). Callers
    must have checked that the annotator may label `campaign`.
    """
    now = timezone.now()
    with transaction.atomic():
        held = (
            Assignment.objects.filter(_live_lease(now), annotator=annotator, item__campaign=campaign)
            .exclude(item_id=after_item_id)
            .select_related(*(f"item__{path}" for path in _PAYLOAD_RELATED))
            .order_by("leased_at")
            .first()
        )
        if held is not None:
            return held
        excluded: list[int] = [after_item_id] if after_item_id else []
        for _attempt in range(_LEASE_ATTEMPTS):
            item_id = _candidate_item_id(campaign=campaign, annotator=annotator, now=now, excluded=excluded)
            if item_id is None:
                return None
            # We hold the item's row lock and every lease is created under it: this fresh statement sees
            # any lease committed by whoever held the lock before us (the candidate query's snapshot may not).
            active = list(
                Assignment.objects.filter(item_id=item_id, status=Assignment.Status.ACTIVE).values_list(
                    "pk", "expires_at"
                )
            )
            if any(expires_at > now for _pk, expires_at in active):
                excluded.append(item_id)
                continue
            if active:  # leases that ran out: mark them, which also frees the one-active-lease constraint
                Assignment.objects.filter(pk__in=[pk for pk, _ in active]).update(
                    status=Assignment.Status.EXPIRED
                )
            lease = Assignment.objects.create(
                item_id=item_id,
                annotator=annotator,
                leased_at=now,
                expires_at=now + timedelta(minutes=campaign.lease_minutes),
            )
            lease.item = CampaignItem.objects.select_related(*_PAYLOAD_RELATED).get(pk=item_id)
            return lease
    raise AuditError("Too many annotators are asking for items at once; please try again.", code="busy")


def _category(*, campaign: Campaign, key: str) -> LabelCategory:
    try:
        return LabelCategory.objects.get(scheme_id=campaign.scheme_id, key=key)
    except LabelCategory.DoesNotExist:
        raise AuditError(
            f"Unknown category {key!r} for this campaign's scheme.",
            errors=[{"row": None, "field": "category", "message": f"unknown category {key!r}"}],
        ) from None


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


def _item_resolve(*, item: CampaignItem, campaign: Campaign) -> None:
    """Recompute a fully labelled item's status and final label from its labels (under its row lock)."""
    category_ids = list(Label.objects.filter(item=item).values_list("category_id", flat=True))
    outcome = item_outcome(
        category_ids=category_ids, labels_needed=campaign.labels_per_output, final_rule=campaign.final_rule
    )
    item.status = outcome.status
    item.final_category_id = outcome.final_category_id
    item.final_source = outcome.final_source


def _not_held_error(*, item: CampaignItem, annotator) -> AuditError:
    """Why an annotator cannot label an item they do not hold (only computed on this error path)."""
    if Label.objects.filter(item=item, annotator=annotator).exists():
        return AuditError(
            "You have already labelled this item; change your label from your previous items.",
            code="already_labelled",
        )
    if Assignment.objects.filter(item=item, annotator=annotator, status=Assignment.Status.EXPIRED).exists():
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
    with transaction.atomic():
        item = _locked_item(campaign=campaign, item_id=item_id)
        category = _category(campaign=campaign, key=category_key)
        mine = Assignment.objects.filter(
            item=item, annotator=annotator, status=Assignment.Status.ACTIVE
        ).first()
        if mine is None:
            raise _not_held_error(item=item, annotator=annotator)
        if item.status != CampaignItem.Status.OPEN:
            raise AuditError("This item already has all the labels it needs.", code="complete")
        label = Label.objects.create(
            item=item, annotator=annotator, category=category, note=note, active_seconds=active_seconds
        )
        LabelHistory.objects.create(label=label, changed_by=annotator, new_category=category, new_note=note)
        Assignment.objects.filter(pk=mine.pk).update(status=Assignment.Status.DONE)
        item.label_count += 1
        if item.label_count >= campaign.labels_per_output:
            _item_resolve(item=item, campaign=campaign)
        item.save(update_fields=["label_count", "status", "final_category", "final_source"])
    return label


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
        if item.status != CampaignItem.Status.OPEN:
            _item_resolve(item=item, campaign=campaign)
            item.save(update_fields=["status", "final_category", "final_source"])
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
