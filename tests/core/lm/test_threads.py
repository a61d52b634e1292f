"""Automatic torch thread counts (core/lm/threads.py) and the trainer's use of them."""

from __future__ import annotations

import torch

import core.rl.trainer as trainer_module
from core.config import RunConfig
from core.lm.threads import auto_threads, cpu_cores, resolve_threads, sampling_threads
from core.rl.trainer import Trainer


def test_auto_threads_leave_the_window_a_core():
    assert auto_threads(beside_gui=False, cores=2) == 2
    assert auto_threads(beside_gui=True, cores=2) == 1
    assert auto_threads(beside_gui=True, cores=8) == 7
    assert auto_threads(beside_gui=True, cores=1) == 1   # never zero


def test_a_number_set_by_hand_always_wins():
    for beside_gui in (False, True):
        assert resolve_threads(3, beside_gui) == 3 and sampling_threads(3, beside_gui) == 3
    assert resolve_threads(0, True) == resolve_threads(0, False) == cpu_cores()
    assert sampling_threads(0, False) == cpu_cores()
    assert sampling_threads(0, True) == max(1, cpu_cores() - 1)


def test_the_trainer_samples_with_the_sampling_count_and_updates_with_the_other(monkeypatch):
    seen = []
    real = trainer_module.generate

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "generate", spy)
    threads = torch.get_num_threads()
    try:
        cfg = RunConfig.for_algo("grpo", prompts_per_step=2, group_size=2, steps=2)
        # 2 cores, as this project's machines have, whatever the test machine has
        monkeypatch.setattr("core.lm.threads.cpu_cores", lambda: 2)
        trainer = Trainer(cfg, beside_gui=True)
        assert (trainer.threads, trainer.sample_threads) == (2, 1)
        for _ in trainer.run():
            assert torch.get_num_threads() == 2   # the passes ran with every core
        assert seen == [1, 1]
        seen.clear()
        headless = Trainer(cfg)
        list(headless.run())
        assert (headless.threads, headless.sample_threads) == (2, 2) and seen == [2, 2]
    finally:
        torch.set_num_threads(threads)


def test_a_failed_sampling_gives_the_passes_their_count_back(monkeypatch):
    def boom(*args, **kwargs):
        assert torch.get_num_threads() == 1
        raise RuntimeError("sampling failed")

    threads = torch.get_num_threads()
    try:
        monkeypatch.setattr("core.lm.threads.cpu_cores", lambda: 2)
        trainer = Trainer(RunConfig.for_algo("grpo", prompts_per_step=2, group_size=2, steps=1),
                          beside_gui=True)
        monkeypatch.setattr(trainer_module, "generate", boom)
        try:
            trainer.step()
        except RuntimeError:
            pass
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_describe_names_both_counts_only_when_they_differ(monkeypatch):
    from core.lm.threads import describe

    monkeypatch.setattr("core.lm.threads.cpu_cores", lambda: 2)
    assert describe(0, beside_gui=True) == "2 (sampling 1)"
    assert describe(0, beside_gui=False) == "2" and describe(3, beside_gui=True) == "3"
