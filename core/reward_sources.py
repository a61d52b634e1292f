"""Where a step's rewards come from (the lecture's first half), chosen per run.

- `TrueReward`: the task's hidden reward, as if people could score every sample.
- `RankedReward`: direct assignment. The simulated annotator ranks each group of K completions of
  a prompt; `rank_to_reward` turns ranks into rewards. Rewards are only comparable within a group.
- `LearnedReward`: a reward model r_theta(x, y), trained on simulated annotator rankings before RL
  starts or loaded by name (trained on a person's stored rankings); iterated rounds update it.

Every source also returns the true reward, logged as `reward/true_mean`, so over-optimisation of a
proxy shows as the two curves parting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.annotator import SimulatedAnnotator
from core.rewards import rank_to_reward


@dataclass(frozen=True)
class Scored:
    scores: np.ndarray      # [B] the reward optimised
    true: np.ndarray        # [B] the hidden task reward


class TrueReward:
    name = "true"
    metrics: dict[str, float] = {}      # set-up metrics (a reward model's accuracy), step 0
    rankings: tuple = ()                # rankings the source was trained on, if any

    def __init__(self, task):
        self.task = task

    def score(self, prompts, completions, input_ids, attention_mask, group_size) -> Scored:
        true = self.task.true_rewards(prompts, completions).astype(np.float32)
        return Scored(true, true)


class RankedReward:
    name = "ranked"
    metrics: dict[str, float] = {}
    rankings: tuple = ()

    def __init__(self, task, annotator: SimulatedAnnotator, scheme: str, lam: float):
        self.task, self.annotator, self.scheme, self.lam = task, annotator, scheme, lam

    def score(self, prompts, completions, input_ids, attention_mask, group_size) -> Scored:
        true = self.task.true_rewards(prompts, completions).astype(np.float32)
        ranks = self.annotator.rank(true.reshape(-1, group_size))
        rewards = rank_to_reward(torch.as_tensor(ranks), self.scheme, self.lam)
        return Scored(rewards.reshape(-1).numpy().astype(np.float32), true)


class LearnedReward:
    name = "learned"

    def __init__(self, task, reward_model, metrics: dict[str, float], rankings, base=None):
        self.task, self.model, self.base = task, reward_model, base
        self.metrics, self.rankings = metrics, tuple(rankings)

    def update(self, new_rankings, cfg, max_new_tokens: int, progress=None, stop=None):
        """An iterated round: continue training on every ranking so far (new ones included) for
        `rm_round_steps` updates; returns the held-out metrics."""
        from core.reward_model import train_reward_model, with_true_rewards

        self.rankings = self.rankings + tuple(with_true_rewards(list(new_rankings), self.task))
        self.model, metrics = train_reward_model(
            self.base, list(self.rankings), cfg.rm_loss, cfg.rm_round_steps, cfg.rm_lr,
            max_new_tokens, cfg.seed + len(self.rankings), progress=progress, init=self.model,
            stop=stop)
        return metrics

    def score(self, prompts, completions, input_ids, attention_mask, group_size) -> Scored:
        true = self.task.true_rewards(prompts, completions).astype(np.float32)
        with torch.no_grad():
            scores = self.model.score(input_ids, attention_mask).float().cpu().numpy()
        return Scored(scores.astype(np.float32), true)


def make_reward_source(cfg, task, base_model, device, rng: np.random.Generator, progress=None,
                       data_dir=None, restored=None):
    """The source the config names. A learned reward loads the saved model `cfg.reward_model`
    from `data_dir` (with the stored rankings it was trained on, for later rounds), or trains
    one here (it reports progress) on simulated rankings of the base model's completions.
    restored: (model, rankings, metrics) from a resumed run's state, used as they are."""
    annotator = SimulatedAnnotator(cfg.annotator_temperature, rng)
    if cfg.reward_source == "true":
        return TrueReward(task)
    if cfg.reward_source == "ranked":
        return RankedReward(task, annotator, cfg.rank_scheme, cfg.rank_lam)
    if restored is not None:
        model, rankings, metrics = restored
        return LearnedReward(task, model, metrics, rankings, base_model)
    from core.reward_model import collect_rankings, train_reward_model, with_true_rewards

    if cfg.reward_model:
        return _named_source(cfg, task, base_model, device, data_dir, with_true_rewards)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    max_new = cfg.max_new_tokens or task.max_new_tokens
    rankings = collect_rankings(base_model, task, annotator, cfg.rm_rankings, cfg.rm_k, max_new,
                                rng, gen, cfg.temperature, progress,
                                min_new_tokens=cfg.min_new_tokens)
    model, metrics = train_reward_model(base_model, rankings, cfg.rm_loss, cfg.rm_steps,
                                        cfg.rm_lr, max_new, cfg.seed, progress=progress)
    return LearnedReward(task, model, metrics, rankings, base_model)


def _named_source(cfg, task, base_model, device, data_dir, with_true_rewards):
    from core.rankings import RankingStore
    from core.reward_model_store import load_reward_model

    if data_dir is None:
        raise ValueError("reward_model names a saved model, but no data folder was given")
    model, meta = load_reward_model(data_dir, cfg.reward_model, device)
    if meta.get("task") != cfg.task:
        raise ValueError(f"reward model {cfg.reward_model!r} was trained for task "
                         f"{meta.get('task')!r}, not {cfg.task!r}")
    ids = set(meta.get("ranking_ids", []))
    with RankingStore(data_dir) as store:
        stored = [r for r in store.list(task=cfg.task, rankable_only=True) if r.id in ids]
    rankings = with_true_rewards([r.to_training() for r in stored], task)
    metrics = {k: float(v) for k, v in meta.get("metrics", {}).items()}
    return LearnedReward(task, model, metrics, rankings, base_model)
