"""Generate the next round's draft batch from the shell and follow its progress.

    manage.py new_round --from-run 7 [--prompts more.jsonl] [--no-previous-prompts] [--responses 2]
        [--temperature 0.7] [--top-p 0.95] [--max-new-tokens 128] [--seed 0] [--models new,previous]
        [--pairs 40] [--share uncertainty=0.4 ...] [--no-wait]
    manage.py new_round --model HUB_ID_OR_PATH --previous-batch 3 ...

With a broker the generation runs on a gpu worker and this command polls the database; with eager
Celery (tests) it runs in this process."""

import time

from django.core.management.base import BaseCommand, CommandError

from annotation.errors import DomainError
from training.models import RoundStatus
from training.rounds import selectors, services


class Command(BaseCommand):
    help = "Generate the next round's draft batch from a trained policy (or a registered model)."

    def add_arguments(self, parser):
        parser.add_argument("--from-run", type=int, help="A succeeded policy run.")
        parser.add_argument("--model", default="", help="Or a registered model: a hub id or a path on the GPU host.")
        parser.add_argument("--reference-model", default="")
        parser.add_argument("--previous-batch", type=int)
        parser.add_argument("--prompts", help="A JSONL of prompts to add ({\"prompt\": ...} per line).")
        parser.add_argument("--no-previous-prompts", action="store_true")
        parser.add_argument("--reward-run", type=int)
        parser.add_argument("--batch-name", default="")
        parser.add_argument("--responses", type=int, dest="responses_per_prompt")
        parser.add_argument("--temperature", type=float)
        parser.add_argument("--top-p", type=float)
        parser.add_argument("--max-new-tokens", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--models", help="Comma-separated roles: new,previous,reference.")
        parser.add_argument("--pairs", type=int, dest="n_pairs")
        parser.add_argument("--share", action="append", default=[], help="rule=share, e.g. uncertainty=0.5")
        parser.add_argument("--engine", choices=["auto", "vllm", "transformers"])
        parser.add_argument("--no-wait", action="store_true")

    def handle(self, *args, **opts):
        options = {k: opts[k] for k in ("responses_per_prompt", "temperature", "top_p", "max_new_tokens", "seed", "n_pairs", "engine")
                   if opts.get(k) is not None}
        if opts["models"]:
            options["models"] = [m.strip() for m in opts["models"].split(",") if m.strip()]
        if opts["share"]:
            try:
                options["shares"] = {k: float(v) for k, _, v in (s.partition("=") for s in opts["share"])}
            except ValueError as exc:
                raise CommandError(f"--share takes rule=number: {exc}") from None
        lines = None
        if opts["prompts"]:
            with open(opts["prompts"], encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        try:
            rnd = services.round_create(
                created_by=None, source_run_id=opts["from_run"], source_model=opts["model"], reference_model=opts["reference_model"],
                previous_batch_id=opts["previous_batch"], use_previous_prompts=not opts["no_previous_prompts"], prompt_lines=lines,
                reward_run_id=opts["reward_run"], batch_name=opts["batch_name"], options=options,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"round {rnd.number} (#{rnd.pk}): {rnd.responses_total} responses to sample for “{rnd.batch_name}”")
        if opts["no_wait"]:
            return
        last = ""
        while True:
            rnd = selectors.round_get(round_id=rnd.pk)
            line = f"{rnd.status} {rnd.responses_done}/{rnd.responses_total}"
            if line != last:
                self.stdout.write(line)
                last = line
            if rnd.status not in (RoundStatus.QUEUED, RoundStatus.GENERATING):
                break
            time.sleep(2)
        if rnd.status != RoundStatus.READY:
            raise CommandError(f"round {rnd.pk} {rnd.status}: {rnd.error}")
        self.stdout.write(self.style.SUCCESS(f"draft batch {rnd.batch_id} “{rnd.batch_name}” holds {rnd.round_pairs.count()} pairs"))
