"""Platform overhead of a reward-model run.

The same reward-model training (demo MiniLM base, same export snapshot, same hyper-parameters)
launched (a) through the platform - pipeline_start -> Celery task (eager) -> run_execute: data read
through storage, progress/metrics/heartbeat written to the database, model uploaded, audit rows -
and (b) as a bare TRL script reading the same JSONL. Prints both wall times and the overhead %.
Target: < 5 %. On a GPU host it also prints tokens/s and peak GPU memory of a reward-model and a
DPO run.

    .venv/bin/python bench/training_overhead.py [--pairs 48] [--epochs 3] [--repeats 2]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="clinpref-bench-"))
# The test settings run Celery eagerly: the task runs in this process, which is what is timed.
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{WORK / 'bench.sqlite3'}")
os.environ["MEDIA_ROOT"] = str(WORK / "media")
os.environ.update(HF_HUB_OFFLINE="1", TRL_EXPERIMENTAL_SILENCE="1", TOKENIZERS_PARALLELISM="false")
os.environ.pop("REDIS_URL", None)
os.environ.pop("CELERY_BROKER_URL", None)

import django  # noqa: E402

django.setup()
import logging  # noqa: E402

logging.disable(logging.WARNING)


def bare_trl_reward_run(train_path: Path, test_path: Path, params: dict, out_dir: Path) -> float:
    """What a researcher would write by hand: load, RewardTrainer.train(), save."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from training.runners.tiny_models import minilm_path

    start = time.perf_counter()
    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.eos_token = tokenizer.sep_token
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    files = {"train": str(train_path), "test": str(test_path)}
    data = load_dataset("json", data_files=files).select_columns(["prompt", "chosen", "rejected", "margin"])
    args = RewardConfig(
        output_dir=str(out_dir / "trainer"), learning_rate=params["learning_rate"], num_train_epochs=params["num_train_epochs"],
        per_device_train_batch_size=params["per_device_train_batch_size"], per_device_eval_batch_size=params["per_device_train_batch_size"],
        seed=0, logging_steps=1, bf16=False, activation_checkpointing=False, report_to="none", save_strategy="no",
        eval_strategy="epoch", max_length=params["max_length"], center_rewards_coefficient=0.01, disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=data["train"], eval_dataset=data["test"], processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(out_dir / "model"))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()

    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from annotation.exports.services import export_create, export_default_params
    from tests import factories
    from training import services
    from training.models import TrainingRun

    batch, _, _ = factories.judged_batch(n_pairs=opts.pairs, n_raters=3, seed=7, agreement=0.9, name=f"bench-{time.time_ns()}")
    export = export_create(batch=batch, params=export_default_params(), created_by=None)
    params = {"num_train_epochs": opts.epochs, "per_device_train_batch_size": 8, "learning_rate": 5e-5, "max_length": 512,
              "early_stopping_patience": 0}
    data_dir = WORK / "data"
    data_dir.mkdir()
    from annotation.exports.services import export_open_file

    for name in ("train.jsonl", "test.jsonl"):
        with export_open_file(snapshot=export, name=name) as src:
            (data_dir / name).write_bytes(src.read())

    # Warm-up: first imports and first model load are paid once by any long-lived worker.
    bare_trl_reward_run(data_dir / "train.jsonl", data_dir / "test.jsonl", params, WORK / "warmup")

    platform, bare, runs = [], [], []
    for i in range(opts.repeats):
        bare.append(bare_trl_reward_run(data_dir / "train.jsonl", data_dir / "test.jsonl", params, WORK / f"bare{i}"))
        start = time.perf_counter()
        run = services.pipeline_start(export=export, pipeline="reward_model", params=params, created_by=None)[0]
        platform.append(time.perf_counter() - start)
        run = TrainingRun.objects.get(pk=run.pk)
        assert run.status == "succeeded", run.error
        runs.append(run)

    # The fastest of interleaved repeats: on a shared machine noise only ever adds time.
    p, b = min(platform), min(bare)
    for r in runs:
        print(f"run {r.pk}: train_seconds {r.final_metrics.get('train_seconds')} steps {r.final_metrics.get('steps')} wall {(r.finished_at - r.started_at).total_seconds():.2f}")
    m = runs[-1].final_metrics
    print(f"data: {m['n_train']} train / {m['n_test']} held-out pairs, MiniLM-L6 reward model, {opts.epochs:g} epochs, device {m['device']}")
    print(f"bare TRL script : {b:7.2f} s  (runs: {', '.join(f'{x:.2f}' for x in bare)})")
    print(f"platform        : {p:7.2f} s  (runs: {', '.join(f'{x:.2f}' for x in platform)})")
    print(f"overhead        : {100 * (p - b) / b:+6.1f} %  (target < 5 %)")
    print(f"held-out accuracy {m.get('heldout_accuracy')}, tokens/s {m.get('tokens_per_second')}, GPU peak memory {m.get('gpu_peak_memory_gb')} GB")

    import torch

    if torch.cuda.is_available():
        dpo = services.pipeline_start(export=export, pipeline="dpo", params={"max_steps": 20, "per_device_train_batch_size": 8},
                                      created_by=None)[0]
        dpo = TrainingRun.objects.get(pk=dpo.pk)
        print(f"GPU {m['device']}: reward model {m['tokens_per_second']} tokens/s, peak {m['gpu_peak_memory_gb']} GB; "
              f"DPO (tiny policy) {dpo.final_metrics.get('tokens_per_second')} tokens/s, peak {dpo.final_metrics.get('gpu_peak_memory_gb')} GB")


if __name__ == "__main__":
    main()
