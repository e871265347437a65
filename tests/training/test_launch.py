"""The `accelerate launch` path of a run (training/runners/launch.py), on CPU with one process:
TRAINING_LAUNCHER="accelerate" forces the subprocess a multi-GPU host would use, so the bridge
(progress file -> metrics rows, cancel -> stop file, result file -> final metrics, crash -> failed
run) is exercised without GPUs."""

import json

import pytest

from tests.training.test_pipeline import _queued_pipeline
from training import configs, launching, services, worker
from training.models import RunStatus, TrainingMetric, TrainingRun


@pytest.fixture
def launched(settings, media, tmp_path):
    """A queued reward-model run on a tiny local model, to be trained through accelerate launch."""
    from training.runners.tiny_models import build_tiny_reward_model

    settings.CLINPREF = {**settings.CLINPREF, "TRAINING_LAUNCHER": "accelerate", "TRAINING_HEARTBEAT_SECONDS": 3600}
    run = _queued_pipeline(spec="reward_model")[0]
    TrainingRun.objects.filter(pk=run.pk).update(base_model=build_tiny_reward_model(tmp_path / "tiny-reward"), is_demo=False)
    return run


def _launches(monkeypatch) -> list[list[str]]:
    commands = []
    original = launching._accelerate_command
    monkeypatch.setattr(launching, "_accelerate_command", lambda **kw: commands.append(original(**kw)) or commands[-1])
    return commands


@pytest.mark.slow
@pytest.mark.django_db
def test_launched_run_succeeds_and_reports_through_the_progress_file(launched, monkeypatch):
    commands = _launches(monkeypatch)
    run = worker.run_execute(run_id=launched.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error + run.log_tail[-3000:]
    (command,) = commands
    assert command[command.index("--num_processes") + 1] == "1" and "--multi_gpu" not in command
    # Metrics crossed the process boundary as they happened, and the result came back whole.
    assert TrainingMetric.objects.filter(run=run, values__has_key="loss").count() >= 2
    assert run.progress == 1.0 and run.current_step == run.total_steps == run.final_metrics["steps"] > 0
    assert run.final_metrics["n_train"] > 0 and run.final_metrics["stopped"] == ""
    assert {f["name"] for f in run.artifact_files} >= {"config.json", "model.safetensors", "README.md"}
    assert not any("-rank" in f["name"] for f in run.artifact_files)


@pytest.mark.slow
@pytest.mark.django_db
def test_cancel_reaches_the_launched_trainer_through_the_stop_file(launched, monkeypatch):
    TrainingRun.objects.filter(pk=launched.pk).update(config={**launched.config, "num_train_epochs": 500, "early_stopping_patience": 0})
    original = worker.RunReporter.report

    def report_then_cancel(self, step, total, metrics):
        original(self, step, total, metrics)
        if step >= 2:  # an admin presses cancel while the run trains
            TrainingRun.objects.filter(pk=self.run_id).update(cancel_requested=True)

    monkeypatch.setattr(worker.RunReporter, "report", report_then_cancel)
    monkeypatch.setattr(worker.RunReporter, "should_stop", lambda self: TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists())
    run = worker.run_execute(run_id=launched.pk)
    assert run.status == RunStatus.CANCELLED, run.error + run.log_tail[-3000:]
    assert run.final_metrics["stopped"] == "cancelled"
    assert 2 <= run.current_step < run.total_steps


@pytest.mark.slow
@pytest.mark.django_db
def test_crashing_trainer_fails_the_run_with_its_last_lines(launched, tmp_path):
    TrainingRun.objects.filter(pk=launched.pk).update(base_model=str(tmp_path / "no-such-model"))
    run = worker.run_execute(run_id=launched.pk)
    assert run.status == RunStatus.FAILED
    assert "accelerate launch (1 process(es)) exited with code 1" in run.error
    assert "no-such-model" in run.error  # the child's own exception, not just an exit code
    assert "Traceback" in run.log_tail and "no-such-model" in run.log_tail


def test_num_processes_is_auto_or_a_whole_number():
    assert configs.params_resolve(kind="reward_model", params={})["num_processes"] == "auto"
    assert configs.params_resolve(kind="dpo", params={"num_processes": "4"})["num_processes"] == 4
    for bad in (0, -1, "x", 1.5, True, None):
        with pytest.raises(configs.ParamsInvalid, match="num_processes"):
            configs.params_resolve(kind="ppo", params={"num_processes": bad})
    assert launching._num_processes({"num_processes": 3}) == 3


def test_progress_lines_are_forwarded_once_and_only_when_complete(tmp_path):
    path, seen = tmp_path / "progress.jsonl", []

    def report(step, total, metrics):
        seen.append((step, total, metrics))

    assert launching._forward_progress(path, 0, report) == 0  # the trainer has not started yet
    path.write_text(json.dumps({"step": 1, "total": 4, "metrics": {"loss": 0.7}}) + "\n" + '{"step": 2, "tot')
    offset = launching._forward_progress(path, 0, report)
    assert seen == [(1, 4, {"loss": 0.7})]
    with open(path, "a") as fh:
        fh.write('al": 4, "metrics": {}}\n')
    launching._forward_progress(path, offset, report)
    assert seen == [(1, 4, {"loss": 0.7}), (2, 4, {})]
