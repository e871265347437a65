from django.core.management.base import BaseCommand

from annotation.demo.load import demo_load


class Command(BaseCommand):
    help = "Load the K-QA demo (users and three batches). Safe to run twice."

    def handle(self, *args, **opts):
        logins = demo_load(stdout=self.stdout)
        self.stdout.write("")
        self.stdout.write("Demo log-ins (DEMO DATA, NOT MEDICAL ADVICE):")
        self.stdout.write(f"  admin:      {logins['admin'][0]} / {logins['admin'][1]}")
        for username, password in logins["physicians"]:
            self.stdout.write(f"  physician:  {username} / {password}")
