"""The training domain: pipelines of runs (reward model -> PPO/GRPO/RLOO, or DPO) on an export.

Read top to bottom; a module may import those below it (contracts in .importlinter):
- urls.py, apis.py, management/   entry points over HTTP and the CLI
- handlers.py      annotation's batch_closed event -> batch_closed_handle, in the dispatching worker
- tasks.py         Celery entry points (train_run on the gpu queue, the reaper); installs the run
                   sender that dispatch.py hands to services
- batch_closed.py  what a closed batch starts: the gate, an export, the pipeline (exactly once)
- worker.py        the worker's runtime for one run: data in, trainer, model out, outcome
- launching.py     the trainer in process or under `accelerate launch` on multi-GPU hosts
- artifacts.py     snapshots and models through Django's storage
- services.py      the run life cycle: start, cancel, reap, claim, finish (audited)
- selectors.py     reads for the API and the dashboard
- configs.py       run parameters, validated (pure); conf.py the settings reader;
  dispatch.py      the enqueue hook; evaluation.py reward-model and policy figures (numpy)
- models.py        TrainingPipeline, TrainingRun, TrainingMetric
- runners/         the only code that imports torch, transformers, trl, peft: one module per kind

The web process imports none of runners/ or worker.py, even indirectly.
"""
