"""The one definition of what makes an item's label final: CampaignItem.status, final_category, final_source.

Applied wherever an item's labels change (label_submit; items_refresh, behind label_change, a campaign's
rule change and `manage.py items_refresh`; the label import) and stored on the item. The dashboards read
the stored final labels (CampaignItem.final_category, the tallies' final_category_id) and never resolve
them again.

- an adjudication sets the final label, whatever the labels say: adjudicated;
- fewer labels than the campaign needs: open, no final label;
- every label agrees: complete, source "unanimous";
- with the majority rule, one category has more than half the labels: complete, source "majority";
- otherwise: disputed, with no final label until someone adjudicates.

The vote is `annotations.stats.resolve_final_label`, under the vote rule each campaign rule names
(VOTE_RULES).
"""

from collections import Counter
from dataclasses import dataclass

from annotations.models import Campaign, CampaignItem
from annotations.stats.disparity import LabelRule, resolve_final_label

VOTE_RULES: dict[str, LabelRule] = {
    Campaign.FinalRule.ADJUDICATE: "unanimous",
    Campaign.FinalRule.MAJORITY: "majority",
}


@dataclass(frozen=True)
class ItemOutcome:
    """An item's status and final label given its labels (and adjudication)."""

    status: str
    final_category_id: int | None
    final_source: str


def item_outcome(
    *,
    category_ids: list[int],
    labels_needed: int,
    final_rule: str,
    adjudicated_category_id: int | None = None,
) -> ItemOutcome:
    """Resolve an item from its labels' category ids: adjudicated, open, complete or disputed."""
    if adjudicated_category_id is not None:
        return ItemOutcome(
            CampaignItem.Status.ADJUDICATED, adjudicated_category_id, CampaignItem.FinalSource.ADJUDICATED
        )
    if len(category_ids) < labels_needed:
        return ItemOutcome(CampaignItem.Status.OPEN, None, CampaignItem.FinalSource.NONE)
    counts = Counter(category_ids)
    categories = sorted(counts)
    index = resolve_final_label([counts[c] for c in categories], rule=VOTE_RULES[final_rule])
    if index is None:
        return ItemOutcome(CampaignItem.Status.DISPUTED, None, CampaignItem.FinalSource.NONE)
    source = CampaignItem.FinalSource.UNANIMOUS if len(categories) == 1 else CampaignItem.FinalSource.MAJORITY
    return ItemOutcome(CampaignItem.Status.COMPLETE, categories[index], source)
