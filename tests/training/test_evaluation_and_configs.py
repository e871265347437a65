"""Pure pieces: held-out reward-model figures, policy monitors, and params -> TRL configs."""

import math

import pytest

from training import configs
from training.evaluation import expected_calibration_error, metrics_compare, policy_monitor_flags, reward_model_report


def test_reward_report_accuracy_margin_weighting_and_calibration():
    report = reward_model_report(rewards_chosen=[2.0, 1.0, 0.0, 3.0], rewards_rejected=[0.0, 2.0, 1.0, 0.0], margins=[2, 0.5, 0.5, 1])
    assert report["accuracy"] == 0.5
    # The two right answers carry weight 3 of 4: strong preferences count more.
    assert report["margin_weighted_accuracy"] == pytest.approx(3 / 4)
    assert 0 <= report["ece"] <= 1


def test_ece_of_a_perfectly_calibrated_model_is_zero():
    assert expected_calibration_error([0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]) == pytest.approx(0.0)
    assert expected_calibration_error([0.95], [0.0]) == pytest.approx(0.95)


def test_agreement_with_physicians_next_to_their_ceiling():
    # Pair 1: raters split 2-1 for chosen; pair 2: unanimous for chosen; the model gets both right.
    report = reward_model_report(rewards_chosen=[1, 1], rewards_rejected=[0, 0], votes=[[1, 1, -1], [1, 1, 1]])
    assert report["agreement_with_physicians"] == pytest.approx(5 / 6)
    assert report["physician_agreement_ceiling"] == pytest.approx((1 + 3) / 6)
    assert report["n_physician_votes"] == 6


def test_rater_disjoint_accuracy_only_counts_flagged_pairs():
    report = reward_model_report(rewards_chosen=[1, 0], rewards_rejected=[0, 1], rater_disjoint=[True, False])
    assert report["rater_disjoint_accuracy"] == 1.0 and report["rater_disjoint_n_pairs"] == 1


def test_policy_monitors_flag_runaway_kl_and_length():
    steady = [{"objective/kl": 0.1, "monitor/response_length": 20}, {"objective/kl": 0.3, "monitor/response_length": 22}]
    assert policy_monitor_flags(steady, kl_limit=6)["flagged"] is False
    runaway = [{"kl": 0.1, "completions/mean_length": 20}, {"kl": 9.0, "completions/mean_length": 60}]
    flags = policy_monitor_flags(runaway, kl_limit=6)["flags"]
    assert any(f.startswith("kl_runaway") for f in flags) and any(f.startswith("length_runaway") for f in flags)
    at_limit = [{"monitor/response_length": 10}, {"monitor/response_length": 64}]
    assert policy_monitor_flags(at_limit, max_length=64, length_growth_limit=100)["flagged"]


def test_metrics_compare_reports_deltas_for_numbers_only():
    out = metrics_compare({"accuracy": 0.8, "device": "cpu"}, {"accuracy": 0.6})
    assert out == {"accuracy": {"current": 0.8, "previous": 0.6, "delta": pytest.approx(0.2)}}
    assert metrics_compare({"a": 1}, None) == {}


def test_params_resolve_fills_clinical_defaults_and_rejects_bad_input():
    ppo = configs.params_resolve(kind="ppo", params={})
    assert (ppo["learning_rate"], ppo["cliprange"], ppo["kl_coef"], ppo["num_ppo_epochs"], ppo["max_grad_norm"]) == (5e-6, 0.2, 0.05, 4, 1.0)
    assert configs.params_resolve(kind="dpo", params={})["beta"] == 0.1
    assert configs.params_resolve(kind="ppo", params={"num_ppo_epochs": "2"})["num_ppo_epochs"] == 2
    for bad in ({"nope": 1}, {"learning_rate": "fast"}, {"cliprange": 5}, {"lora": "maybe"}, {"num_ppo_epochs": 1.5}):
        with pytest.raises(configs.ParamsInvalid):
            configs.params_resolve(kind="ppo", params=bad)
    with pytest.raises(configs.ParamsInvalid):
        configs.pipeline_stages("ppo>reward_model")


def test_params_for_stages_accepts_flat_and_sectioned_params():
    out = configs.params_for_stages(stages=["reward_model", "ppo"], params={"seed": 3, "ppo": {"kl_coef": 0.2}})
    assert out["reward_model"]["seed"] == out["ppo"]["seed"] == 3 and out["ppo"]["kl_coef"] == 0.2
    assert configs.params_for_stages(stages=["dpo"], params={"ppo": {"kl_coef": 0.2}}, strict=False)["dpo"]["beta"] == 0.1


@pytest.mark.parametrize("kind", list(configs.DEFAULTS))
def test_trl_configs_are_cpu_friendly(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    from training.runners import trl_configs

    cfg = trl_configs.trl_config_build(kind=kind, config=configs.params_resolve(kind=kind, params={"lora": True}), output_dir=str(tmp_path))
    assert cfg.bf16 is False and cfg.gradient_checkpointing is False and cfg.report_to in ([], "none", ["none"])
    assert cfg.save_strategy == "no" and not cfg.push_to_hub
    assert trl_configs.lora_config_build(config=configs.params_resolve(kind=kind, params={"lora": True})).r == 8
    if kind == "ppo":
        assert (cfg.learning_rate, cfg.cliprange, cfg.kl_coef, cfg.num_ppo_epochs, cfg.max_grad_norm) == (5e-6, 0.2, 0.05, 4, 1.0)
    if kind == "reward_model":
        assert cfg.max_length is None  # we truncate ourselves instead of letting TRL drop rows
    assert not math.isnan(cfg.learning_rate)
