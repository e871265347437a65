"""python manage.py agreement --csv FILE [--level nominal|ordinal|interval] [--json]
python manage.py agreement --batch ID [--granularity five|three|binary] [--json]

Prints the agreement report of a long table (columns item, rater, label; one row per rating; an
empty label is a missing rating) or of a batch. With --json: one JSON object, the same one
GET /api/batches/{id}/agreement/ returns for a batch. This is how a researcher checks our
numbers against their own tools."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation import agreement as engine
from annotation.agreement import services as agreement_reports
from annotation.agreement.text import RatingsFileError, ratings_from_csv, report_text
from annotation.errors import DomainError
from annotation.models import Batch

class Command(BaseCommand):
    help = "Inter-rater agreement of a CSV table (item,rater,label) or of a batch."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--csv", type=Path, help="long table with columns item, rater, label")
        source.add_argument("--batch", type=int, help="batch id")
        parser.add_argument("--level", choices=engine.METRICS, default=None,
                            help="level of measurement: nominal (default for CSV) or ordinal/interval (integer labels)")
        parser.add_argument("--granularity", choices=engine.LEVELS, default=agreement_reports.DEFAULT_LEVEL,
                            help="with --batch: five-point, three classes (default) or binary (ties dropped)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--bootstrap", type=int, default=None,
                            help="resamples for 95%% CIs (CSV default 1000; batch: the cached report's setting)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **opts):
        if opts["bootstrap"] is not None and opts["bootstrap"] < 0:
            raise CommandError("--bootstrap must be 0 or more.")
        if opts["csv"]:
            metric = opts["level"] or "nominal"
            try:
                ratings = ratings_from_csv(opts["csv"], metric=metric)
            except RatingsFileError as exc:
                raise CommandError(str(exc))
            bootstrap = 1000 if opts["bootstrap"] is None else opts["bootstrap"]
            report = engine.agreement_report(ratings, metric=metric, bootstrap=bootstrap, seed=opts["seed"])
        else:
            batch = Batch.objects.filter(pk=opts["batch"]).first()
            if batch is None:
                raise CommandError(f"Batch {opts['batch']} does not exist.")
            try:
                if opts["level"] or opts["bootstrap"] is not None:
                    # Non-default settings: compute afresh rather than serve (or pollute) the cache.
                    report = agreement_reports.agreement_report_build(
                        batch=batch, level=opts["granularity"], metric=opts["level"], bootstrap=opts["bootstrap"], seed=opts["seed"],
                    )
                else:
                    report = agreement_reports.agreement_report_for_batch(batch=batch, level=opts["granularity"])
            except DomainError as exc:
                raise CommandError(exc.message)
        if opts["json"]:
            self.stdout.write(json.dumps(report, default=str, allow_nan=False))
        else:
            self.stdout.write(report_text(report))
