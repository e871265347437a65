import getpass
import os

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import DomainError
from annotation.models import Role
from annotation.labeling.services import rater_create


class Command(BaseCommand):
    help = ("Create a physician (or, with --admin, an admin). The password comes from RATER_PASSWORD "
            "or an interactive prompt, never from a flag (flags end up in shell history).")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--specialty", required=True)
        parser.add_argument("--admin", action="store_true")
        parser.add_argument("--credentials", default="")
        parser.add_argument("--email", default="")

    def handle(self, *args, **opts):
        password = os.environ.get("RATER_PASSWORD")
        if not password:
            if not os.isatty(0):
                raise CommandError("Set RATER_PASSWORD or run in a terminal to be prompted for a password.")
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords differ.")
        try:
            user, specialty_created = rater_create(
                username=opts["username"], password=password, specialty_name=opts["specialty"],
                role=Role.ADMIN if opts["admin"] else Role.PHYSICIAN, credentials=opts["credentials"], email=opts["email"],
            )
        except DomainError as exc:
            raise CommandError(exc.message)
        if specialty_created:
            self.stdout.write(f"Specialty {user.profile.specialty.name!r} did not exist; created it.")
        self.stdout.write(self.style.SUCCESS(f"Created {user.profile.role} {user.username!r} ({user.profile.specialty.name})."))
