"""GRPO: TRL GRPOTrainer with the parent run's reward model as the reward function."""

from trl import GRPOTrainer

from training.runners.common import RunContext, RunResult, online_policy_run


def run(ctx: RunContext) -> RunResult:
    return online_policy_run(ctx, GRPOTrainer)
