"""Start a training pipeline on an export snapshot from the shell and follow its progress.

    manage.py train --export 3 --pipeline reward_model>ppo [--base-model PATH] [--param lr=1e-5 ...] [--no-wait]

With eager Celery (no broker configured) the runs execute in this process; with a broker they run
on the gpu workers and this command polls the database until the pipeline ends."""

import json
import time

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import DomainError
from training import selectors, services


class Command(BaseCommand):
    help = "Start a training pipeline on an export snapshot and show its progress."

    def add_arguments(self, parser):
        parser.add_argument("--export", type=int, required=True)
        parser.add_argument("--pipeline", default="reward_model>ppo")
        parser.add_argument("--base-model", default="")
        parser.add_argument("--param", action="append", default=[], help="key=value (JSON value), e.g. num_train_epochs=2")
        parser.add_argument("--no-wait", action="store_true")

    def handle(self, *args, **opts):
        params = {}
        for item in opts["param"]:
            key, _, raw = item.partition("=")
            try:
                params[key] = json.loads(raw)
            except json.JSONDecodeError:
                params[key] = raw
        try:
            runs = services.training_start(export_id=opts["export"], pipeline=opts["pipeline"], base_model=opts["base_model"],
                                           params=params, created_by=None)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"pipeline {runs[0].pipeline_id}: runs {', '.join(f'{r.kind}#{r.pk}' for r in runs)}")
        if runs[0].is_demo:
            self.stdout.write(self.style.WARNING(runs[0].note))
        if opts["no_wait"]:
            return
        last = {}
        while True:
            current = list(selectors.training_pipeline_runs(pipeline_id=runs[0].pipeline_id))
            for run in current:
                line = f"{run.kind}#{run.pk} {run.status} {100 * run.progress:5.1f}% step {run.current_step}/{run.total_steps}"
                if last.get(run.pk) != line:
                    self.stdout.write(line)
                    last[run.pk] = line
            if all(r.is_finished for r in current):
                break
            time.sleep(2)
        for run in current:
            style = self.style.SUCCESS if run.status == "succeeded" else self.style.ERROR
            self.stdout.write(style(f"{run.kind}#{run.pk}: {run.status} {run.error}".strip()))
            figures = {k: v for k, v in run.final_metrics.items() if k.startswith("heldout_") or k in ("kl", "score", "train_loss")}
            if figures:
                self.stdout.write(json.dumps(figures, indent=2, default=str))
