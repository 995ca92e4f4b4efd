"""`manage.py items_refresh [--campaign ID]`: recompute items' label counts, summaries and final labels.

Labels written through the platform keep their items up to date; this repairs items after labels or
adjudications were written some other way (SQL, the admin, a restored backup), from the label rows.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotations.models import Campaign, CampaignItem
from annotations.services.labelling import items_refresh


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
            self.stdout.write(f"{campaign.name}: {len(ids)} items, {changed} refreshed")
