"""Reads for campaigns: access checks, progress and per-annotator counts (aggregate queries only)."""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Avg, Count, F, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from annotations.core import prepared
from annotations.core.exceptions import AuditError, NotFoundError
from annotations.core.roles import user_is_researcher
from annotations.models import Assignment, Campaign, CampaignItem, Label, LabelScheme

_ITEM_RELATED = ("output__prompt", "output__endpoint")


@cache
def _member_campaign_statement() -> prepared.Statement:
    """The campaign and its scheme if the user is one of its annotators (every labelling request)."""
    members = Campaign.annotators.through._meta
    columns = prepared.model_columns
    sql = f"""SELECT {columns(Campaign, "c")}, {columns(LabelScheme, "s")}
FROM {Campaign._meta.db_table} c JOIN {LabelScheme._meta.db_table} s ON s.id = c.scheme_id
WHERE c.id = %(campaign)s AND EXISTS (SELECT 1 FROM {members.db_table} m
    WHERE m.{members.get_field("campaign").column} = c.id
      AND m.{members.get_field("user").column} = %(user)s)"""  # noqa: S608
    return prepared.Statement("audit_member_campaign", sql)


def campaign_for_annotator(*, user, campaign_id: int) -> Campaign:
    """The campaign if `user` may label it; NotFoundError otherwise (existence is not revealed).

    Plain SQL, prepared on PostgreSQL: it runs on every labelling request, and compiling the equivalent ORM
    query (membership join, scheme) cost more CPU than the rest of a "next item" request's queries together.
    """
    campaign = None
    if user.has_perm("annotations.label_campaign"):
        with connection.cursor() as cursor:
            _member_campaign_statement().execute(cursor, {"campaign": campaign_id, "user": user.pk})
            row = cursor.fetchone()
        if row is not None:
            split = len(Campaign._meta.concrete_fields)
            campaign = prepared.model_instance(Campaign, row[:split])
            campaign.scheme = prepared.model_instance(LabelScheme, row[split:])
    if campaign is None:
        raise NotFoundError("No such campaign.")
    if campaign.status != Campaign.Status.ACTIVE:
        status = campaign.get_status_display().lower()
        raise AuditError(f"The campaign {campaign.name!r} is {status}.", code="closed")
    return campaign


def campaign_for_researcher(*, user, campaign_id: int) -> Campaign:
    """The campaign for a researcher or admin; NotFoundError for everyone else."""
    campaign = (
        Campaign.objects.filter(pk=campaign_id)
        .select_related("scheme", "created_by", "suggestion_scorer", "sampling_scorer")
        .first()
        if user_is_researcher(user)
        else None
    )
    if campaign is None:
        raise NotFoundError("No such campaign.")
    return campaign


def campaign_list(*, user) -> QuerySet[Campaign]:
    """Campaigns a user may see: all for researchers, the active ones they are assigned to for annotators."""
    campaigns = Campaign.objects.select_related("scheme").prefetch_related("annotators")
    campaigns = campaigns.annotate(item_count=Count("items", distinct=True))
    if user_is_researcher(user):
        return campaigns.order_by("-created_at")
    return campaigns.filter(annotators=user, status=Campaign.Status.ACTIVE).order_by("name")


def campaign_progress(*, campaign: Campaign, annotator) -> dict:
    """My labels and skips in the campaign, and how far the whole campaign is (two aggregate queries)."""
    totals = CampaignItem.objects.filter(campaign=campaign).aggregate(
        items=Count("pk"),
        labels=Sum("label_count"),
        finished=Count("pk", filter=~Q(status=CampaignItem.Status.OPEN)),
    )
    mine = Assignment.objects.filter(item__campaign=campaign, annotator=annotator).aggregate(
        labelled=Count("pk", filter=Q(status=Assignment.Status.DONE)),
        skipped=Count("pk", filter=Q(status=Assignment.Status.SKIPPED)),
    )
    needed = (totals["items"] or 0) * campaign.labels_per_output
    return {
        "mine": {"labelled": mine["labelled"], "skipped": mine["skipped"]},
        "campaign": {
            "items": totals["items"],
            "finished_items": totals["finished"],
            "labels": totals["labels"] or 0,
            "labels_needed": needed,
        },
    }


def campaign_counts(*, campaign: Campaign) -> dict[str, int]:
    """Items unlabelled, in progress (some labels or held), complete, disputed and adjudicated.

    Two aggregate queries: one pass over the items, and the (few) live leases on untouched items.
    """
    open_ = Q(status=CampaignItem.Status.OPEN)
    counts = CampaignItem.objects.filter(campaign=campaign).aggregate(
        total=Count("pk"),
        untouched=Count("pk", filter=open_ & Q(label_count=0)),
        partial=Count("pk", filter=open_ & Q(label_count__gt=0)),
        complete=Count("pk", filter=Q(status=CampaignItem.Status.COMPLETE)),
        disputed=Count("pk", filter=Q(status=CampaignItem.Status.DISPUTED)),
        adjudicated=Count("pk", filter=Q(status=CampaignItem.Status.ADJUDICATED)),
        gold=Count("pk", filter=Q(is_gold=True)),
    )
    held_untouched = (
        Assignment.objects.filter(
            status=Assignment.Status.ACTIVE,
            expires_at__gt=timezone.now(),
            item__campaign=campaign,
            item__status=CampaignItem.Status.OPEN,
            item__label_count=0,
        )
        .values("item_id")
        .distinct()
        .count()
    )
    untouched, partial = counts.pop("untouched"), counts.pop("partial")
    return {**counts, "unlabelled": untouched - held_untouched, "in_progress": partial + held_untouched}


def campaign_annotator_stats(*, campaign: Campaign) -> list[dict]:
    """Per annotator: labels done, skips, mean active seconds, gold labelled and accuracy on gold."""
    labels = (
        Label.objects.filter(item__campaign=campaign)
        .values("annotator_id")
        .annotate(
            done=Count("pk"),
            active=Avg("active_seconds"),
            gold=Count("pk", filter=Q(item__is_gold=True)),
            gold_correct=Count("pk", filter=Q(item__is_gold=True, category_id=F("item__gold_category_id"))),
        )
    )
    skips = dict(
        Assignment.objects.filter(item__campaign=campaign, status=Assignment.Status.SKIPPED)
        .values("annotator_id")
        .annotate(n=Count("pk"))
        .values_list("annotator_id", "n")
    )
    by_annotator = {row["annotator_id"]: row for row in labels}
    # Everyone assigned, and anyone who labelled before being removed from the campaign.
    people = get_user_model().objects.filter(Q(campaigns=campaign) | Q(pk__in=list(by_annotator))).distinct()
    rows = []
    for user in people.order_by("username"):
        row = by_annotator.get(user.pk, {})
        gold = row.get("gold", 0)
        rows.append(
            {
                "annotator": user.username,
                "done": row.get("done", 0),
                "skipped": skips.get(user.pk, 0),
                "mean_active_seconds": row.get("active"),
                "gold_labelled": gold,
                "gold_correct": row.get("gold_correct", 0),
                "gold_accuracy": row["gold_correct"] / gold if gold else None,
            }
        )
    return rows


def adjudication_queue(*, campaign: Campaign, include_adjudicated: bool = False) -> QuerySet[CampaignItem]:
    """Disputed items (and optionally adjudicated ones) with their labels, annotators and notes."""
    statuses = [CampaignItem.Status.DISPUTED]
    if include_adjudicated:
        statuses.append(CampaignItem.Status.ADJUDICATED)
    return (
        CampaignItem.objects.filter(campaign=campaign, status__in=statuses)
        .select_related(*_ITEM_RELATED, "final_category", "adjudication__adjudicator", "gold_category")
        .prefetch_related(
            Prefetch(
                "labels",
                queryset=Label.objects.select_related("annotator", "category").order_by(
                    "annotator__username"
                ),
            )
        )
        .order_by("status", "rank")
    )


def label_list_mine(*, campaign: Campaign, annotator) -> QuerySet[Label]:
    """My labels in the campaign, newest first, with the item shown again when I go back."""
    return (
        Label.objects.filter(item__campaign=campaign, annotator=annotator)
        .select_related("category", *(f"item__{path}" for path in _ITEM_RELATED))
        .order_by("-created_at", "-pk")
    )


def label_get_mine(*, campaign: Campaign, annotator, item_id: int) -> Label:
    """My label on one item of the campaign; NotFoundError if I have none."""
    label = label_list_mine(campaign=campaign, annotator=annotator).filter(item_id=item_id).first()
    if label is None:
        raise NotFoundError("You have not labelled this item.")
    return label
