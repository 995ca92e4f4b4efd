"""`manage.py items_refresh [--campaign ID]`: recompute items' label summaries, final labels and tallies.

Labels written through the platform keep their items (and, on PostgreSQL, the dashboard tallies)
up to date; this repairs them after labels, adjudications or prompts' groups were changed some other
way (SQL, the admin, a restored backup): items from their label rows, tallies from the items.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotations.analysis.tallies import tallies_rebuild
from annotations.labelling.services import items_refresh
from annotations.models import Campaign, CampaignItem


class Command(BaseCommand):
    help = __doc__.split("\n")[0]

    def add_arguments(self, parser) -> None:
        """--campaign."""
        parser.add_argument("--campaign", type=int, help="Only this campaign (default: every campaign).")

    def handle(self, *args, **opts) -> None:
        """Refresh every item of the campaign(s), each campaign in one transaction, under row locks."""
        campaigns = Campaign.objects.order_by("pk")
        if opts["campaign"] is not None:
            campaigns = campaigns.filter(pk=opts["campaign"])
            if not campaigns.exists():
                raise CommandError(f"Campaign {opts['campaign']} does not exist.")
        for campaign in campaigns:
            with transaction.atomic():
                ids = list(
                    CampaignItem.objects.select_for_update()
                    .filter(campaign=campaign)
                    .values_list("pk", flat=True)
                )
                changed = items_refresh(item_ids=ids)
                tallies_rebuild(campaign_id=campaign.pk)
            self.stdout.write(f"{campaign.name}: {len(ids)} items, {changed} refreshed")
