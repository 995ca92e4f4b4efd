"""python manage.py create_user NAME --role annotator [--password P | env AUDIT_PASSWORD]"""

import getpass
import os

from django.core.management.base import BaseCommand, CommandError

from annotations.core.exceptions import AuditError
from annotations.core.roles import Role
from annotations.core.users import user_create


class Command(BaseCommand):
    help = "Create a user with a role (admin, researcher or annotator), or give an existing user that role."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="Defaults to $AUDIT_PASSWORD, else asked for (not echoed).")

    def handle(self, *args, **opts):
        password = opts["password"] or os.environ.get("AUDIT_PASSWORD") or getpass.getpass("Password: ")
        try:
            user = user_create(
                username=opts["username"], role=opts["role"], password=password, email=opts["email"]
            )
        except AuditError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(self.style.SUCCESS(f"{user.username}: role {opts['role']}"))
