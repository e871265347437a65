"""GRPO: TRL GRPOTrainer with the parent run's reward model as the reward function."""

from training.runners.common import RunContext, RunResult, online_policy_run


def run(ctx: RunContext) -> RunResult:
    try:
        from trl import GRPOTrainer
    except (ImportError, RuntimeError) as exc:  # TRL's lazy loader wraps the ImportError
        raise RuntimeError(
            "GRPO needs the `requests` and `urllib3` packages (TRL's vLLM client imports them when the trainer "
            "loads, even without vLLM); add them to requirements.txt on the GPU hosts."
        ) from exc

    return online_policy_run(ctx, GRPOTrainer)
