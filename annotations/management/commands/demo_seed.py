"""python manage.py demo_seed: demo users, starter pack, SmolLM2 answers and a campaign (idempotent)."""

from django.core.management.base import BaseCommand

from annotations.core.users import user_create
from annotations.labelling.campaigns import demo_campaign
from annotations.labelling.demo_labels import demo_labels_simulate
from annotations.library.services import demo_library
from inference.demo import demo_generation

DEMO_PASSWORD = "audit-demo-password"  # noqa: S105 (printed on purpose: demo only)
DEMO_USERS = (
    ("admin", "admin"),
    ("researcher", "researcher"),
    ("annotator1", "annotator"),
    ("annotator2", "annotator"),
    ("annotator3", "annotator"),
)


class Command(BaseCommand):
    help = (
        "Create the demo users, import the starter pack, generate a few hundred answers with SmolLM2 on "
        "vLLM (CPU) and open a campaign over them. Safe to run twice. Never run it on a production database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-generation", action="store_true", help="Skip starting vLLM and generating answers."
        )
        parser.add_argument("--outputs", type=int, default=300, help="About how many answers to generate.")

    def handle(self, *args, **opts):
        for username, role in DEMO_USERS:
            user_create(username=username, role=role, password=DEMO_PASSWORD, validate_password=False)
        prompt_set = demo_library(stdout=self.stdout)
        run = None
        if not opts["no_generation"]:
            run = demo_generation(stdout=self.stdout, prompt_set=prompt_set, limit=opts["outputs"])
        if run is not None:
            campaign = demo_campaign(stdout=self.stdout, run=run)
            written = demo_labels_simulate(campaign=campaign)
            if written:
                self.stdout.write(
                    f"Wrote {written} SIMULATED labels (annotator1, annotator2: a rule of thumb with noise) "
                    "on the "
                    "first items, so the dashboards and the scorer validation tables have numbers."
                )
        self.stdout.write("")
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role in DEMO_USERS:
            self.stdout.write(f"  {username:<12} {role}")
