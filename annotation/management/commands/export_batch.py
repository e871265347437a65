"""python manage.py export_batch ID --policy majority --format trl-jsonl [--format kto] --out DIR"""

import os
import shutil

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.exports import services as export_services
from annotation.errors import DomainError
from annotation.exports import FORMATS, POLICIES, TIE_MODES


class Command(BaseCommand):
    help = "Export a batch as a new versioned snapshot and copy its files to --out."

    def add_arguments(self, parser):
        parser.add_argument("batch_id", type=int)
        parser.add_argument("--policy", choices=POLICIES, default="majority")
        parser.add_argument("--format", dest="formats", action="append", choices=FORMATS,
                            help="repeat for several formats (default: trl-jsonl)")
        parser.add_argument("--out", required=True, help="directory to copy the snapshot's files into")
        parser.add_argument("--test-fraction", type=float, default=0.1)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--ties", choices=TIE_MODES, default="drop")
        parser.add_argument("--min-agreement", type=int, default=2)
        parser.add_argument("--min-rater-kappa", type=float, default=None)
        parser.add_argument("--rater-disjoint-test", action="store_true")
        parser.add_argument("--user", default=None, help="username recorded as the creator (audit)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        from tqdm import tqdm

        params = {
            "policy": opts["policy"], "formats": opts["formats"] or ["trl-jsonl"],
            "test_fraction": opts["test_fraction"], "seed": opts["seed"], "ties": opts["ties"],
            "min_agreement": opts["min_agreement"], "min_rater_kappa": opts["min_rater_kappa"],
            "rater_disjoint_test": opts["rater_disjoint_test"],
        }
        user = None
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise CommandError(f"No user {opts['user']!r}.")
        bar = tqdm(unit="pair", disable=opts["no_progress"], file=self.stderr._out)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            snapshot = export_services.export_create(batch=opts["batch_id"], params=params, created_by=user,
                                                     progress=progress)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        finally:
            bar.close()
        os.makedirs(opts["out"], exist_ok=True)
        for entry in snapshot.files:
            with export_services.export_open_file(snapshot=snapshot, name=entry["name"]) as src, \
                    open(os.path.join(opts["out"], entry["name"]), "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            rows = "" if entry["rows"] is None else f" {entry['rows']} rows"
            self.stdout.write(f"{entry['name']}{rows} sha256={entry['sha256']}")
        self.stdout.write(self.style.SUCCESS(
            f"Export {snapshot.pk}: batch {snapshot.batch_id} v{snapshot.version} -> {opts['out']}"))
