"""python manage.py issue_token USERNAME [--rotate]"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotations.core.tokens import token_issue


class Command(BaseCommand):
    help = "Print a user's API token (created if missing); --rotate replaces it."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--rotate", action="store_true", help="Replace the token; the old one stops working."
        )

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {opts['username']!r}.")
        self.stdout.write(token_issue(user=user, rotate=opts["rotate"]).key)
