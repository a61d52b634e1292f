"""Where a step's rewards come from (the lecture's first half), chosen per run.

- `TrueReward`: the task's hidden reward, as if people could score every sample.
- `RankedReward`: direct assignment. The simulated annotator ranks each group of K completions of
  a prompt; `rank_to_reward` turns ranks into rewards. Rewards are only comparable within a group.
- `LearnedReward`: a reward model r_theta(x, y) trained on annotator rankings before RL starts.

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

    def __init__(self, task, reward_model, metrics: dict[str, float], rankings):
        self.task, self.model = task, reward_model
        self.metrics, self.rankings = metrics, tuple(rankings)

    def score(self, prompts, completions, input_ids, attention_mask, group_size) -> Scored:
        true = self.task.true_rewards(prompts, completions).astype(np.float32)
        with torch.no_grad():
            scores = self.model.score(input_ids, attention_mask).float().cpu().numpy()
        return Scored(scores.astype(np.float32), true)


def make_reward_source(cfg, task, base_model, device, rng: np.random.Generator, progress=None):
    """The source the config names. A learned reward trains its model here (it reports progress),
    on rankings of completions sampled from the base model."""
    annotator = SimulatedAnnotator(cfg.annotator_temperature, rng)
    if cfg.reward_source == "true":
        return TrueReward(task)
    if cfg.reward_source == "ranked":
        return RankedReward(task, annotator, cfg.rank_scheme, cfg.rank_lam)
    from core.reward_model import collect_rankings, train_reward_model

    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    max_new = cfg.max_new_tokens or task.max_new_tokens
    rankings = collect_rankings(base_model, task, annotator, cfg.rm_rankings, cfg.rm_k, max_new,
                                rng, gen, cfg.temperature, progress)
    model, metrics = train_reward_model(base_model, rankings, cfg.rm_loss, cfg.rm_epochs,
                                        cfg.rm_lr, max_new, cfg.seed, progress=progress)
    return LearnedReward(task, model, metrics, rankings)
