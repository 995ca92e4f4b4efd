"""Print a database's fingerprint as JSON, for the backup/restore rehearsal (tests/test_backup_restore.py).

Run: DATABASE_URL=postgres://... python tests/support/restore_fingerprint.py CAMPAIGN_ID

What a restore must keep, read through the platform's own code: every dashboard number of the campaign
(disparity and agreement tables, fixed seed) and its scorer validation; the rows of the three tallies the
triggers keep (annotations_campaignitemtally, labelsettally, scoretally); the item each annotator is
given next. Then it writes through the services (each annotator labels the item it was given, a score
of a new output version changes), which fire the triggers, and prints everything again: a restored
database whose triggers were lost would show old tallies in the second half.
"""

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auditproject.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from annotations.analysis.report import dashboard_report  # noqa: E402
from annotations.analysis.selectors import StatsFilters  # noqa: E402
from annotations.labelling.services import assignment_next, label_submit  # noqa: E402
from annotations.models import Campaign  # noqa: E402

TALLIES = ("annotations_campaignitemtally", "annotations_labelsettally", "annotations_scoretally")


def _tallies() -> dict:
    out = {}
    with connection.cursor() as cursor:
        for table in TALLIES:
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 (fixed names)
            columns = [c.name for c in cursor.description if c.name != "id"]
            index = [i for i, c in enumerate(cursor.description) if c.name != "id"]
            out[table] = sorted([[row[i] for i in index] for row in cursor.fetchall()], key=repr)
            out[f"{table}:columns"] = columns
    return out


def _state(campaign: Campaign) -> dict:
    report = dashboard_report(
        filters=StatsFilters(campaign=campaign.pk), parts=("disparity", "agreement", "scorers")
    )
    nexts = {}
    for annotator in campaign.annotators.order_by("username"):
        lease = assignment_next(campaign=campaign, annotator=annotator)
        nexts[annotator.username] = None if lease is None else lease.item_id
    return {"report": report, "tallies": _tallies(), "next": nexts}


def main() -> None:
    campaign = Campaign.objects.get(pk=int(sys.argv[1]))
    before = _state(campaign)
    for username, item_id in before["next"].items():
        if item_id is not None:
            annotator = campaign.annotators.get(username=username)
            label_submit(
                campaign=campaign, annotator=annotator, item_id=item_id, category_key="refusal-to-answer"
            )
    after = _state(campaign)
    print(json.dumps({"before": before, "after": after}, sort_keys=True, default=str))


if __name__ == "__main__":
    main()
