"""python manage.py issue_token USERNAME [--name NAME] [--days N] [--rotate]"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from annotations.core.tokens import token_issue


class Command(BaseCommand):
    help = (
        "Make a new API token for a user and print its secret (shown this once: only its digest is stored). "
        "--rotate revokes the user's other tokens."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="api", help="What the token is for (listed with it).")
        parser.add_argument("--days", type=int, default=None, help="Lifetime (default AUDIT_API_TOKEN_DAYS).")
        parser.add_argument("--rotate", action="store_true", help="Revoke the user's other tokens.")

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {opts['username']!r}.")
        try:
            token, secret = token_issue(
                user=user, name=opts["name"], days=opts["days"], rotate=opts["rotate"]
            )
        except AuditError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"token {token.name!r} of {user.username}, expires {token.expires_at:%Y-%m-%d}")
        self.stdout.write(secret)
