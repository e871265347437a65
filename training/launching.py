"""How a run's trainer is started in the worker: in this process, or under `accelerate launch`
when the run spans several GPUs (training/runners/launch.py), with the bridge between the worker
and the launched trainers: progress file -> reporter, cancel -> stop file, result file -> RunResult.
Nothing here imports torch or TRL at module level: the web process imports training.services,
which imports this module."""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from .models import RunKind

if TYPE_CHECKING:
    from .worker import LogTail, RunReporter

logger = logging.getLogger("training")

RUNNER_MODULES = {kind: f"training.runners.{'reward' if kind == RunKind.REWARD_MODEL else kind}" for kind in RunKind.values}


def _num_processes(config: dict) -> int:
    """The run's `num_processes`: a number, or "auto" = every GPU of this host (1 without GPUs)."""
    wanted = config.get("num_processes", "auto")
    if wanted != "auto":
        return int(wanted)
    # Imported here, not at module level: the web process imports this module too.
    from training.runners.common import gpu_count

    return max(gpu_count(), 1)


def train(ctx, *, launcher: str, work: Path, reporter: RunReporter, tail: LogTail):
    """Run the trainer in this process, or under `accelerate launch` when the run spans several
    GPUs (launcher="accelerate", the TRAINING_LAUNCHER setting, forces the launcher even for one process)."""
    processes = _num_processes(ctx.config)
    if processes == 1 and launcher != "accelerate":
        return importlib.import_module(RUNNER_MODULES[ctx.kind]).run(ctx)
    return _train_launched(ctx, processes=processes, work=work, reporter=reporter, tail=tail)


def _accelerate_command(*, processes: int, spec: Path) -> list[str]:
    from training.runners.common import cpu_threads, gpu_count

    cli = Path(sys.executable).with_name("accelerate")
    cmd = [str(cli), "launch"] if cli.exists() else [sys.executable, "-m", "accelerate.commands.launch"]
    # Explicit values, so a stray ~/.cache/huggingface/accelerate config cannot change the topology;
    # precision is the run's own bf16 param (TRL's config sets it inside the trainer).
    cmd += ["--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--quiet"]
    if processes > 1:
        cmd.append("--multi_gpu")
    elif gpu_count() == 0:
        cmd += ["--cpu", "--num_cpu_threads_per_process", str(cpu_threads())]  # as many threads as in-process
    return cmd + ["-m", "training.runners.launch", "--spec", str(spec)]


def _forward_progress(path: Path, offset: int, report) -> int:
    """Hand the complete JSON lines written since `offset` to report(); returns the new offset."""
    if not path.exists():
        return offset
    with open(path, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read()
    complete = chunk.rfind(b"\n") + 1  # a line still being written waits for the next poll
    for line in chunk[:complete].splitlines():
        if line.strip():
            point = json.loads(line)
            report(point["step"], point["total"], point["metrics"])
    return offset + complete


def _file_tail(path: Path, lines: int, max_bytes: int = 256_000) -> list[str]:
    if not path.exists():
        return []
    with open(path, "rb") as fh:
        fh.seek(max(path.stat().st_size - max_bytes, 0))
        return fh.read().decode("utf-8", "replace").splitlines()[-lines:]


def _train_launched(ctx, *, processes: int, work: Path, reporter: RunReporter, tail: LogTail):
    """Train under `accelerate launch` (training/runners/launch.py) and bridge its callbacks: its
    progress lines go to the same reporter as an in-process run, a cancel becomes its stop file,
    its RunResult comes back as JSON. A non-zero exit raises with the child's last lines."""
    from training.runners.common import RunResult

    io = work / "launch"
    io.mkdir()
    progress, stop, result_file, output = io / "progress.jsonl", io / "stop", io / "result.json", io / "output.log"
    spec = io / "spec.json"
    spec.write_text(json.dumps({
        "kind": ctx.kind, "runner": RUNNER_MODULES[ctx.kind], "data_dir": str(ctx.data_dir), "output_dir": str(ctx.output_dir),
        "config": ctx.config, "base_model": ctx.base_model, "reward_model_path": ctx.reward_model_path,
        "model_card_extra": ctx.model_card_extra, "progress_file": str(progress), "stop_file": str(stop), "result_file": str(result_file),
    }, default=str), encoding="utf-8")
    root = str(settings.BASE_DIR)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    command = _accelerate_command(processes=processes, spec=spec)
    logger.info("training.launch", extra={"command": " ".join(command)})
    with open(output, "wb") as out:
        # Its own session, so an interrupted task can take down every trainer process it started.
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True)
    offset = 0
    try:
        while True:
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
            offset = _forward_progress(progress, offset, reporter.report)
            if proc.returncode is not None:
                break
            if not stop.exists() and reporter.should_stop():
                stop.touch()
    finally:
        if proc.poll() is None:  # soft time limit or worker shutdown while training
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        last = _file_tail(output, 200)
        tail.lines.extend(last)
    if proc.returncode != 0 or not result_file.exists():
        said = next((line.strip() for line in reversed(last) if line.strip()), "no output")
        raise RuntimeError(f"accelerate launch ({processes} process(es)) exited with code {proc.returncode}: {said}\n"
                           "Its last lines:\n" + "\n".join(last[-15:]))
    return RunResult(**json.loads(result_file.read_text(encoding="utf-8")))
