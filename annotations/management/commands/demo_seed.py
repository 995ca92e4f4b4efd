"""python manage.py demo_seed: demo users (and, as the platform grows, demo data); safe to run twice."""

from django.core.management.base import BaseCommand

from annotations.services.users import user_create

DEMO_PASSWORD = "audit-demo-password"  # noqa: S105 (printed on purpose: demo only)
DEMO_USERS = (
    ("admin", "admin"),
    ("researcher", "researcher"),
    ("annotator1", "annotator"),
    ("annotator2", "annotator"),
    ("annotator3", "annotator"),
)


class Command(BaseCommand):
    help = "Create the demo users and demo data (idempotent). Never run it on a production database."

    def handle(self, *args, **opts):
        for username, role in DEMO_USERS:
            user_create(username=username, role=role, password=DEMO_PASSWORD, validate_password=False)
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role in DEMO_USERS:
            self.stdout.write(f"  {username:<12} {role}")
