"""Human feedback headless: a named reward model from stored rankings, a run that uses it, and
iterated rounds with the simulated annotator standing in for the person."""

import json

import numpy as np
import pytest
import torch

from core.config import RunConfig
from core.reward_learning.feedback import SimulatedFeedback, sample_groups, train_from_store
from core.reward_learning.rankings import RankingStore
from core.reward_learning.reward_model_store import list_reward_models, load_reward_model
from core.rl.trainer import default_checkpoint
from core.store.runs import RunStore
from core.store.session import train_and_record
from explorer.app import main

pytestmark = pytest.mark.skipif(not default_checkpoint("sentiment").exists(),
                                reason="assets/sentiment.safetensors missing")
TINY = dict(prompts_per_step=2, group_size=4, threads=1, rm_rankings=12, rm_steps=3,
            rm_round_steps=2)


def store_simulated_rankings(data_dir, n=24):
    from core.lm.checkpoints import load_checkpoint
    from core.tasks import get_task

    torch.set_num_threads(1)
    base, _ = load_checkpoint(default_checkpoint("sentiment"))
    task = get_task("sentiment")
    rng = np.random.default_rng(0)
    groups = sample_groups(base, task, task.sample_prompts(n, rng), 4, 16, 1.0,
                           torch.Generator().manual_seed(0), "base")
    with RankingStore(data_dir) as store:
        return SimulatedFeedback(0.1, rng, store).rank(groups)


def test_rm_train_saves_a_named_model_a_run_then_uses(tmp_path, capsys):
    store_simulated_rankings(tmp_path)
    assert main(["rm", "train", "--task", "sentiment", "--name", "mine", "--steps", "4",
                 "--json", "--data-dir", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"heldout_accuracy", "true_accuracy"} <= set(out) and out["rankings"] == 24
    assert 0 <= out["heldout_accuracy"] <= 1 and 0 <= out["true_accuracy"] <= 1
    (meta,) = list_reward_models(tmp_path)
    assert meta["name"] == "mine" and len(meta["ranking_ids"]) == 24

    cfg = RunConfig.for_algo("grpo", reward_source="learned", reward_model="mine", steps=1,
                             **TINY)
    from core.rl.trainer import Trainer

    trainer = Trainer(cfg, data_dir=tmp_path)
    model, _ = load_reward_model(tmp_path, "mine")
    ids = torch.tensor([[5, 6, 7, 8]])
    mask = torch.ones_like(ids, dtype=torch.float32)
    # the run scores with the saved model, not a freshly trained one
    assert torch.allclose(trainer.reward_source.model.score(ids, mask), model.score(ids, mask))
    assert len(trainer.reward_source.rankings) == 24  # later rounds build on its rankings


def test_a_named_model_of_another_task_or_none_is_refused(tmp_path):
    store_simulated_rankings(tmp_path, 8)
    train_from_store(tmp_path, "sentiment", name="senti", steps=1)
    from core.rl.trainer import Trainer

    with pytest.raises(ValueError, match="trained for task 'sentiment'"):
        Trainer(RunConfig.for_algo("grpo", task="length", reward_source="learned",
                                   reward_model="senti", **TINY), data_dir=tmp_path)
    with pytest.raises(ValueError, match="no reward model 'other'.*senti"):
        Trainer(RunConfig.for_algo("grpo", reward_source="learned", reward_model="other",
                                   **TINY), data_dir=tmp_path)
    with pytest.raises(ValueError, match="bad reward-model name"):
        RunConfig.for_algo("grpo", reward_source="learned", reward_model="../x")


def test_an_iterated_round_with_the_simulated_annotator(tmp_path):
    cfg = RunConfig.for_algo("grpo", reward_source="learned", steps=4, feedback_every=2,
                             feedback_groups=3, **TINY)
    store = RunStore(tmp_path)
    run_id, status = train_and_record(cfg, store)
    assert status == "finished"
    (event,) = [e for e in store.events(run_id) if e["kind"] == "feedback_round"]
    assert event["step"] == 2 and event["payload"]["new_rankings"] == 3
    assert event["payload"]["rankings"] == 12 + 3  # all rankings so far
    steps, values = store.metric_series(run_id, "rm/rankings")
    assert steps.tolist() == [0, 2] and values.tolist() == [12, 15]
    with RankingStore(tmp_path) as rankings:
        stored = rankings.list()
    # the round ranked the CURRENT policy's samples, 3 groups of rm_k = 4 (and, blind, one of
    # the base model's in each, for the win rate), and stored them
    assert len(stored) == 3 and all(len(r.responses) == 4 + 1 for r in stored)
    _, win = store.metric_series(run_id, "eval/win_rate")
    assert len(win) == 1 and 0 <= win[0] <= 1
    assert {r.policy for r in stored} == {f"run {run_id} step 2"}
    assert {r.source for r in stored} == {"simulated"}


def test_a_round_updates_the_reward_model(tmp_path):
    from core.rl.trainer import Trainer

    cfg = RunConfig.for_algo("grpo", reward_source="learned", steps=3, feedback_groups=2, **TINY)
    trainer = Trainer(cfg, data_dir=tmp_path)
    before = [p.clone() for p in trainer.reward_source.model.parameters()]
    trainer.control.request_round()
    results = list(trainer.run())
    after = list(trainer.reward_source.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert not any(p.requires_grad for p in after)  # frozen again for scoring
    kinds = [[e["kind"] for e in r.events] for r in results]
    assert kinds == [[], ["feedback_round"], []]  # asked once: one round, after step 0


def test_a_person_round_cannot_run_headless_and_leaves_no_run(tmp_path, capsys):
    rc = main(["train", "--steps", "2", "--set", "reward_source=learned", "--set",
               "feedback_every=1", "--set", "feedback_by=person", "--data-dir", str(tmp_path)])
    assert rc == 2 and "feedback_by=person needs a person" in capsys.readouterr().err
    assert RunStore(tmp_path).list_runs() == []


def test_a_missing_named_model_is_refused_before_a_run_exists(tmp_path, capsys):
    rc = main(["train", "--steps", "1", "--quiet", "--set", "reward_source=learned", "--set",
               "reward_model=nope", "--data-dir", str(tmp_path)])
    assert rc == 2 and "no reward model 'nope'" in capsys.readouterr().err
    assert RunStore(tmp_path).list_runs() == []
