import os

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from annotation.errors import DomainError, ImportRejected
from annotation.labeling.importing import batch_for_import, pairs_import


class Command(BaseCommand):
    help = "Validate and import a JSONL file of pairs into a batch (created as a draft if new). All or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--batch", required=True, help="Batch name; created as a draft when it does not exist.")
        parser.add_argument("--specialty", help="Specialty of a new batch (created if unknown).")
        parser.add_argument("--raters-per-pair", type=int, default=None)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        path = opts["file"]
        if not os.path.isfile(path):
            raise CommandError(f"No such file: {path}")
        size = os.path.getsize(path)
        with open(path, "rb") as fh, tqdm(total=sum(1 for _ in open(path, "rb")), unit=" lines", desc="importing",
                                          disable=opts["no_progress"] or size < 100_000) as bar:
            try:
                # One transaction: a rejected file leaves no empty draft batch behind either.
                with transaction.atomic():
                    batch, created = batch_for_import(name=opts["batch"], specialty_name=opts["specialty"],
                                                      raters_per_pair=opts["raters_per_pair"], actor=None)
                    n = pairs_import(batch=batch, lines=fh, actor=None, progress=bar.update)
            except ImportRejected as exc:
                for err in exc.errors:
                    self.stderr.write(f"line {err['line']}: {err['message']}")
                raise CommandError(exc.message)
            except DomainError as exc:
                raise CommandError(exc.message)
        verb = "Created draft" if created else "Added to"
        self.stdout.write(self.style.SUCCESS(f"{verb} batch {batch.name!r} (id {batch.pk}): {n} pairs imported."))
