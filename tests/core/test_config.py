"""RunConfig: validation names the field and the range; metadata drives everything else."""

import json

import pytest

from core.config import FIELDS, RunConfig, applies, coerce, field_info, live_fields


def test_defaults_are_valid_and_per_algo_defaults_apply():
    assert RunConfig().algo == "grpo"
    ppo = RunConfig.for_algo("ppo")
    assert (ppo.epochs, ppo.minibatches) == (2, 2)
    assert RunConfig.for_algo("grpo").kl_estimator == "k3"
    kl_penalty = RunConfig.for_algo("kl_penalty")
    assert kl_penalty.epochs * kl_penalty.minibatches > 1     # a trust region needs reuse
    assert RunConfig.for_algo("grpo").kl_in == "loss"
    assert RunConfig.for_algo("ppo", epochs=2).epochs == 2


@pytest.mark.parametrize("field,value,words", [
    ("clip_eps", 5.0, ["clip_eps", "[0.0001, 1.0]"]),
    ("algo", "sft", ["algo", "reinforce", "grpo", "dpo"]),
    ("group_size", 1, ["group_size", "[2, 256]"]),
    ("lr", float("nan"), ["lr", "finite"]),
    ("steps", 2.5, ["steps", "int"]),
])
def test_invalid_values_name_the_field_and_range(field, value, words):
    with pytest.raises(ValueError) as err:
        RunConfig(**{field: value})
    for w in words:
        assert w in str(err.value)


def test_every_field_has_help_and_numeric_fields_have_bounds():
    for name in FIELDS:
        info = field_info(name)
        assert info["help"], name
        if info["type"] in (int, float) and not info["choices"]:
            assert info["min"] is not None and info["max"] is not None, name


def test_applies_hides_knobs_of_other_objectives():
    assert applies("clip_eps", "ppo", "true")
    assert not applies("clip_eps", "reinforce", "true")
    assert applies("rank_scheme", "grpo", "ranked")
    assert not applies("rank_scheme", "grpo", "true")
    assert {"lr", "beta", "kl_target", "clip_eps", "ent_coef", "temperature"} <= set(live_fields())


def test_coerce_text():
    assert coerce("lr", "1e-4") == 1e-4
    assert coerce("steps", "12") == 12
    assert coerce("whiten_advantages", "off") is False
    with pytest.raises(ValueError, match="lr expects float"):
        coerce("lr", "fast")
    with pytest.raises(ValueError, match="unknown setting"):
        coerce("learning_rate", "1")


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_save_and_load_round_trip(tmp_path, suffix):
    cfg = RunConfig.for_algo("ppo", lr=3e-5, task="arithmetic")
    path = tmp_path / f"run{suffix}"
    cfg.save(path)
    assert RunConfig.load(path) == cfg


def test_load_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lr": 1e-4, "speed": 3}))
    with pytest.raises(ValueError, match="unknown setting.*speed"):
        RunConfig.load(bad)
    with pytest.raises(ValueError, match="does not exist"):
        RunConfig.load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("lr = = 1")
    with pytest.raises(ValueError, match="not valid TOML"):
        RunConfig.load(broken)


def test_k1_in_the_loss_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="k2 or k3"):
        RunConfig.for_algo("reinforce", kl_in="loss", kl_estimator="k1")
    RunConfig.for_algo("reinforce", kl_in="loss", kl_estimator="k1", beta=0.0)   # KL off: fine
    RunConfig.for_algo("reinforce", kl_in="loss", kl_estimator="k3")


def test_grpo_family_knobs_are_settable_from_text():
    cfg = RunConfig.from_dict({"algo": "grpo", "loss_type": "dr_grpo", "scale_rewards": "none",
                               "group_baseline": "leave_one_out",
                               "importance_sampling": "sequence", "clip_eps": "3e-4"})
    assert (cfg.loss_type, cfg.scale_rewards, cfg.clip_eps) == ("dr_grpo", "none", 3e-4)
    with pytest.raises(ValueError, match="grpo, bnpo, dr_grpo, dapo"):
        RunConfig.for_algo("grpo", loss_type="sapo")


def test_a_tasks_defaults_win_over_an_objectives():
    assert RunConfig.for_algo("grpo", task="arithmetic").prompts_per_step == 64
    assert RunConfig.for_algo("ppo", task="arithmetic").lr == 2e-4
    assert RunConfig.for_algo("grpo", task="sentiment").prompts_per_step == 8
    assert RunConfig.for_algo("grpo", task="arithmetic", prompts_per_step=3).prompts_per_step == 3


def test_a_config_saved_before_rm_steps_still_loads():
    """Runs stored before rm_epochs became rm_steps must still open in the window."""
    old = {**RunConfig().to_dict(), "rm_epochs": 4}
    old.pop("rm_steps")
    assert RunConfig.from_dict(old).rm_steps == RunConfig().rm_steps


def test_a_config_file_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "notepad.toml"
    path.write_bytes("\ufefflr = 3e-5\n".encode("utf-8"))
    assert RunConfig.load(path).lr == 3e-5


def test_min_new_tokens_cannot_exceed_the_completion_length():
    assert RunConfig(min_new_tokens=48).min_new_tokens == 48   # sentiment's default length
    with pytest.raises(ValueError, match=r"min_new_tokens \(49\).*48, task sentiment"):
        RunConfig(min_new_tokens=49)
    with pytest.raises(ValueError, match=r"min_new_tokens \(6\) must be <= max_new_tokens \(5\)"):
        RunConfig(min_new_tokens=6, max_new_tokens=5)
    with pytest.raises(ValueError, match="task arithmetic"):   # arithmetic's answers are 4 long
        RunConfig.for_algo("grpo", task="arithmetic", min_new_tokens=5)


def test_a_reward_sources_defaults_win_over_an_objectives():
    from core.config import FIELDS

    learned = RunConfig.for_algo("grpo", reward_source="learned")
    true = RunConfig.for_algo("grpo")
    differs = [n for n, f in FIELDS.items() if f.metadata["per_source"].get("learned")
               is not None]
    assert differs, "the learned reward has defaults of its own (issue 16)"
    for name in differs:
        assert getattr(learned, name) != getattr(true, name), name
    # and a value given wins over every default
    assert RunConfig.for_algo("grpo", reward_source="learned", beta=0.3).beta == 0.3


def test_a_stored_run_from_before_ensembles_goes_on_as_it_ran():
    saved = RunConfig.for_algo("grpo", reward_source="learned").to_dict()
    for name in ("rm_members", "rm_aggregate", "rm_negatives", "rm_shaping", "feedback_pool",
                 "feedback_base_sample"):
        del saved[name]
    cfg = RunConfig.from_dict(saved, algo_defaults=False)
    assert (cfg.rm_members, cfg.rm_negatives, cfg.rm_shaping) == (1, 0.0, "none")
    # a config file a person writes gets today's defaults
    assert RunConfig.from_dict({"reward_source": "learned"}).rm_members > 1
