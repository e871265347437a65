"""One training run under `accelerate launch`, across the GPUs of one host:

    accelerate launch --multi_gpu --num_processes 4 -m training.runners.launch --spec SPEC.json

training.launching writes the spec and starts this; it stays the only process that talks to the
database. The spec (JSON) holds the RunContext fields (kind, data_dir, output_dir, config,
base_model, reward_model_path, model_card_extra), the runner module, and three files that carry
the callbacks across the process boundary:
- progress_file: the main process appends one JSON line per report(step, total, metrics);
- stop_file: once it exists, should_stop() is True on every process (at the same step);
- result_file: the main process writes the RunResult there as JSON when the runner returns.

Imports nothing from Django, and torch/accelerate only inside functions, so the worker can import
this module's helpers without a GPU library."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
from pathlib import Path


def _progress_writer(path: Path, *, is_main: bool):
    def report(step: int, total: int, metrics: dict) -> None:
        # Every rank sees the same (already gathered) logs; one writer keeps the file clean.
        if not is_main:
            return
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, "total": total, "metrics": metrics}, default=str) + "\n")

    return report


def _stop_checker(path: Path, state):
    def should_stop() -> bool:
        stop = path.exists()
        if state.num_processes > 1:
            # The ranks must leave the loop at the same step, or the ones still training wait
            # forever in their next all-reduce: agree on the flag (any rank saw the file -> stop).
            import torch
            import torch.distributed as dist

            flag = torch.tensor([1 if stop else 0], device=state.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    return should_stop


def _write_json_atomically(path: Path, payload: dict) -> None:
    # The worker polls for this file: it must never see half of it.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, default=str), encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, type=Path, help="JSON spec written by training.launching")
    spec = json.loads(parser.parse_args(argv).spec.read_text(encoding="utf-8"))

    import torch
    from accelerate import PartialState

    from training.runners.common import RunContext

    # cpu= as the trainer's own arguments will say (configs: use_cpu without CUDA); otherwise a
    # CPU-only torchrun would look like one process here and several to the trainer.
    state = PartialState(cpu=not torch.cuda.is_available())
    output_dir = Path(spec["output_dir"])
    if not state.is_main_process:
        # The runners save the final model on every rank; only the main rank's copy is uploaded, so
        # the others write next to it instead of racing on the same files.
        output_dir = output_dir.parent / f"{output_dir.name}-rank{state.process_index}"
    ctx = RunContext(
        kind=spec["kind"],
        data_dir=Path(spec["data_dir"]),
        output_dir=output_dir,
        config=spec["config"],
        base_model=spec["base_model"],
        reward_model_path=spec.get("reward_model_path"),
        report=_progress_writer(Path(spec["progress_file"]), is_main=state.is_main_process),
        should_stop=_stop_checker(Path(spec["stop_file"]), state),
        model_card_extra=spec.get("model_card_extra") or {},
    )
    result = importlib.import_module(spec["runner"]).run(ctx)
    state.wait_for_everyone()
    if state.is_main_process:
        _write_json_atomically(Path(spec["result_file"]), dataclasses.asdict(result))
    state.destroy_process_group()


if __name__ == "__main__":
    main()
