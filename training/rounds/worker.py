"""The worker's runtime for one round: claim it, sample the responses still missing (each stored as
soon as it exists, so a dead or cancelled worker loses at most the one in flight), score them with
the previous reward model, choose the pairs, and build the draft batch. Only the Celery task
training.tasks.round_generate calls round_execute; nothing here imports torch at module level."""

from __future__ import annotations

import itertools
import logging
import random
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from ..models import GeneratedResponse, Round, TrainingRun
from ..services import DEMO_POLICY_BASE
from . import selection, selectors, services

logger = logging.getLogger("training")


def response_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    """One seed per (prompt, sample), shared by the models: each model answers a prompt's k-th
    sample under the same random stream, which makes their comparison a little less noisy."""
    return seed * 1_000_000 + prompt_index * 100 + sample_index


class CancelPoller:
    """should_stop() for the generation loop; reads the cancel flag at most every `poll` seconds."""

    def __init__(self, round_id: int, poll: float = 1.0):
        self.round_id, self.poll, self._at, self._cancelled = round_id, poll, 0.0, False

    def __call__(self) -> bool:
        if not self._cancelled and time.monotonic() - self._at >= self.poll:
            self._at = time.monotonic()
            self._cancelled = services.round_cancel_requested(round_id=self.round_id)
        return self._cancelled


def model_local_path(spec: dict, target: Path) -> str:
    """Where the worker loads a role's model from: a run's artifacts through storage, the demo's
    tiny policy built here with its recorded seed, or a hub id / local path as given."""
    from ..artifacts import artifacts_download

    if spec.get("run"):
        artifacts_download(TrainingRun.objects.get(pk=spec["run"]), target)
        return str(target)
    if spec.get("path") == DEMO_POLICY_BASE:
        from training.runners.tiny_models import build_tiny_causal_lm

        return build_tiny_causal_lm(target, seed=int(spec.get("seed", 0)))
    return spec["path"]


def _candidates(rnd: Round, rng: random.Random) -> list[selection.Candidate]:
    """Pairs of responses to the same prompt: across models when there are several (what a round
    compares), within the one model otherwise. Identical or empty answers make no pair."""
    by_prompt: dict[int, list[GeneratedResponse]] = {}
    for r in GeneratedResponse.objects.filter(round=rnd).order_by("prompt_index", "role", "sample_index"):
        by_prompt.setdefault(r.prompt_index, []).append(r)
    several = len(rnd.models_used) > 1
    out = []
    for pi, responses in by_prompt.items():
        for x, y in itertools.combinations(responses, 2):
            if (x.role == y.role) == several or not x.text.strip() or not y.text.strip() or x.text.strip() == y.text.strip():
                continue
            a, b = (x, y) if rng.random() < 0.5 else (y, x)  # which side is A carries no information
            out.append(selection.Candidate(key=(a, b), prompt=rnd.prompts[pi]["text"], score_a=a.reward_score, score_b=b.reward_score))
    return out


def round_execute(*, round_id: int, task_id: str = "") -> Round | None:
    rnd = services.round_claim(round_id=round_id, task_id=task_id)
    if rnd is None:
        return None
    work = Path(tempfile.mkdtemp(prefix=f"clinpref-round-{rnd.pk}-"))
    try:
        from training.runners.generate import GenerationJob, Sampling, engine_pick, generate, score_responses

        o = rnd.options
        engine, why = engine_pick(o["engine"])
        services.round_engine_set(round_id=rnd.pk, engine=why)
        sampling = Sampling(temperature=o["temperature"], top_p=o["top_p"], max_new_tokens=o["max_new_tokens"], chat=o["chat"])
        recorded = {"temperature": o["temperature"], "top_p": o["top_p"], "max_new_tokens": o["max_new_tokens"], "engine": engine}
        done = set(GeneratedResponse.objects.filter(round=rnd).values_list("prompt_index", "role", "sample_index"))
        should_stop = CancelPoller(rnd.pk)
        for role, spec in rnd.models_used.items():
            jobs = [GenerationJob(key=(pi, si), prompt=p["text"], seed=response_seed(o["seed"], pi, si))
                    for pi, p in enumerate(rnd.prompts) for si in range(o["responses_per_prompt"]) if (pi, role, si) not in done]
            if not jobs:
                continue
            path = model_local_path(spec, work / role)

            def keep(job, text, role=role, spec=spec):
                services.response_record(round_id=rnd.pk, prompt_index=job.key[0], sample_index=job.key[1], role=role,
                                         model=spec, sampling=recorded, seed=job.seed, text=text)

            if not generate(path, jobs, sampling, on_response=keep, should_stop=should_stop, engine=engine):
                services.round_finish_cancelled(round_id=rnd.pk)
                return Round.objects.get(pk=rnd.pk)
        if should_stop():
            services.round_finish_cancelled(round_id=rnd.pk)
            return Round.objects.get(pk=rnd.pk)

        previous = selectors.batch_pairs_with_directions(batch_id=rnd.previous_batch_id)
        previous_scores: dict[int, tuple[float, float]] = {}
        if rnd.reward_run_id:
            rm_path = model_local_path({"run": rnd.reward_run_id}, work / "reward-model")
            unscored = list(GeneratedResponse.objects.filter(round=rnd, reward_score__isnull=True))
            prompts = [rnd.prompts[r.prompt_index]["text"] for r in unscored]
            scores = score_responses(rm_path, list(zip(prompts, [r.text for r in unscored])))
            services.responses_scores_set(scores={r.pk: s for r, s in zip(unscored, scores)})
            flat = score_responses(rm_path, [(p["prompt"], t) for p in previous for t in (p["a"], p["b"])])
            previous_scores = {p["pair_id"]: (flat[2 * i], flat[2 * i + 1]) for i, p in enumerate(previous)}

        rng = random.Random(o["seed"])
        candidates = _candidates(rnd, rng)
        contradictions = selection.contradictions([
            (p["prompt"], *previous_scores.get(p["pair_id"], (None, None)), selectors.majority_of(p["directions"])) for p in previous])
        n_pairs = o["n_pairs"] or len(rnd.prompts) * o["responses_per_prompt"]
        chosen = selection.pairs_select(candidates=candidates, anchors=[p["pair_id"] for p in previous], n_pairs=n_pairs,
                                        shares=o["shares"], previous_contradictions=contradictions, seed=o["seed"])
        previous_by_id = {p["pair_id"]: p for p in previous}
        selected = []
        for key, rule in chosen:
            if rule == "anchor":
                p = previous_by_id[key]
                sa, sb = previous_scores.get(key, (None, None))
                selected.append({"prompt": p["prompt"], "a": {"text": p["a"]}, "b": {"text": p["b"]}, "rule": rule, "anchor_of": key,
                                 "rm_prob_b": selection.sigmoid(sb - sa) if sa is not None else None})
                continue
            a, b = key
            selected.append({
                "prompt": rnd.prompts[a.prompt_index]["text"], "a": {"text": a.text, "response": a.pk},
                "b": {"text": b.text, "response": b.pk}, "rule": rule, "role_a": a.role, "role_b": b.role,
                "model_a": a.model_name, "model_b": b.model_name,
                "rm_prob_b": selection.sigmoid(b.reward_score - a.reward_score) if a.reward_score is not None and b.reward_score is not None else None,
            })
        services.round_batch_build(round_id=rnd.pk, selected=selected)
    except Exception as exc:
        logger.exception("rounds.failed", extra={"round_id": rnd.pk})
        services.round_finish_failed(round_id=rnd.pk, error="".join(traceback.format_exception_only(type(exc), exc)).strip()
                                     + "\n\n" + traceback.format_exc())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Round.objects.get(pk=rnd.pk)
