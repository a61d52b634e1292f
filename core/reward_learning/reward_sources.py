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

from dataclasses import dataclass, field

import numpy as np
import torch

from core.reward_learning.annotator import SimulatedAnnotator
from core.rewards import rank_to_reward


@dataclass(frozen=True)
class Scored:
    scores: np.ndarray      # [B] the reward optimised
    true: np.ndarray        # [B] the hidden task reward
    metrics: dict = field(default_factory=dict)   # the source's own, slash-grouped


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


# Base-model samples each reward model is standardised on: 32 prompts x 4 (128 samples; the
# members' means and spreads on them move by under 0.1 sd between two such draws).
CALIBRATION_PROMPTS, CALIBRATION_K = 32, 4


class LearnedReward:
    """A reward model's score, as the run's config asks for it: the ensemble's members combined
    conservatively (`rm_aggregate`, `rm_lambda`), then shaped (`rm_shaping`). Each step also
    reports how much the members disagree on the policy's samples against on the base model's
    (`rm/disagreement_ratio`): above 1, the policy writes what the rankings never covered."""

    name = "learned"

    def __init__(self, task, reward_model, metrics: dict[str, float], rankings, base=None,
                 cfg=None, generator=None, calibration=None):
        """cfg: the run's config, or a callable that returns the live one (a live edit of the
        temperature reaches the base samples PaR draws)."""
        self.task, self.model, self.base = task, reward_model, base
        self.metrics, self.rankings = metrics, tuple(rankings)
        self._cfg, self.generator, self._calibration = cfg, generator, calibration

    @property
    def calibration(self):
        """The base samples a round standardises on: drawn at the first round, not at start-up
        (a run that never has a round never pays for them)."""
        if callable(self._calibration):
            self._calibration = self._calibration()
        return self._calibration

    @property
    def cfg(self):
        return self._cfg() if callable(self._cfg) else self._cfg

    def fresh_accuracy(self, new_rankings, max_new_tokens: int) -> dict[str, float]:
        """`rm/fresh_accuracy`: the model's agreement with a round's new rankings before it
        trains on them (none when every new ranking was all ties)."""
        from core.reward_learning.reward_training import pairwise_accuracy

        fresh = pairwise_accuracy(self.model, list(new_rankings), max_new_tokens, "annotator")
        return {"rm/fresh_accuracy": fresh} if fresh == fresh else {}

    def update(self, new_rankings, cfg, max_new_tokens: int, progress=None, stop=None):
        """An iterated round: continue training on every ranking so far (new ones included) for
        `rm_round_steps` updates, standardise again on the base samples; returns the held-out
        metrics."""
        from core.reward_learning.reward_training import train_reward_model, with_true_rewards

        self.rankings = self.rankings + tuple(with_true_rewards(list(new_rankings), self.task))
        self.model, metrics = train_reward_model(
            self.base, list(self.rankings), cfg.rm_loss, cfg.rm_round_steps, cfg.rm_lr,
            max_new_tokens, cfg.seed + len(self.rankings), progress=progress, init=self.model,
            stop=stop, negatives=cfg.rm_negatives, calibration=self.calibration)
        return metrics

    def _combined(self, input_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
        """(the aggregate reward [B], the members' spread [B])."""
        from core.reward_learning.reward_model import aggregate, spread

        z = self.model.standardized(input_ids, attention_mask).float()
        cfg = self.cfg
        kind, lam = (cfg.rm_aggregate, cfg.rm_lambda) if cfg is not None else ("mean", 0.0)
        return aggregate(z, kind, lam), spread(z)

    def _reference(self, prompts, group_size: int) -> torch.Tensor:
        """The reward of one base-model sample per group's prompt [B // group_size]."""
        from core.lm.batching import encode_pairs, encode_prompts
        from core.lm.sampling import generate
        from core.lm.tokenizer import TOKENIZER

        cfg = self.cfg
        firsts = list(prompts[::group_size])
        device = next(self.base.parameters()).device
        ids, mask = encode_prompts(firsts, device)
        max_new = cfg.max_new_tokens or self.task.max_new_tokens
        sample = generate(self.base, ids, mask, max_new, temperature=cfg.temperature,
                          top_k=cfg.top_k or None, eos_id=TOKENIZER.eos_id,
                          generator=self.generator, min_new_tokens=cfg.min_new_tokens)
        texts = [TOKENIZER.decode(r) for r in sample.tokens.tolist()]
        rids, rmask, _ = encode_pairs(firsts, texts, max_new, device)
        return self._combined(rids, rmask)[0]

    def score(self, prompts, completions, input_ids, attention_mask, group_size) -> Scored:
        true = self.task.true_rewards(prompts, completions).astype(np.float32)
        metrics: dict[str, float] = {}
        with torch.no_grad():
            reward, disagree = self._combined(input_ids, attention_mask)
            if self.model.n_members > 1:
                metrics["rm/disagreement"] = float(disagree.mean())
                if self.model.calibrated:
                    base = float(self.model.base_spread)
                    metrics["rm/base_disagreement"] = base
                    metrics["rm/disagreement_ratio"] = float(disagree.mean()) / max(base, 1e-6)
            if self.cfg is not None and self.cfg.rm_shaping == "par" and self.base is not None:
                metrics["reward/rm_mean"] = float(reward.mean())
                ref = self._reference(prompts, group_size)
                reward = torch.sigmoid(reward - ref.repeat_interleave(group_size))
        return Scored(reward.cpu().numpy().astype(np.float32), true, metrics)


def make_reward_source(cfg, task, base_model, device, rng: np.random.Generator, progress=None,
                       data_dir=None, restored=None, generator=None, live=None):
    """The source the config names. A learned reward loads the saved model `cfg.reward_model`
    from `data_dir` (with the stored rankings it was trained on, for later rounds), or trains
    one here (it reports progress) on simulated rankings of the base model's completions.
    restored: (model, rankings, metrics) from a resumed run's state, used as they are.
    generator: the run's torch generator, which PaR's base samples draw from; live: a callable
    that returns the run's config as edits leave it."""
    annotator = SimulatedAnnotator(cfg.annotator_temperature, rng)
    if cfg.reward_source == "true":
        return TrueReward(task)
    if cfg.reward_source == "ranked":
        return RankedReward(task, annotator, cfg.rank_scheme, cfg.rank_lam)
    from core.reward_learning.reward_training import (
        base_samples,
        collect_rankings,
        train_reward_model,
        with_true_rewards,
    )

    max_new = cfg.max_new_tokens or task.max_new_tokens
    drawn: list = []

    def calibration():   # the same samples, drawn once, whoever asks first
        if not drawn:
            drawn.append(base_samples(base_model, task, CALIBRATION_PROMPTS, CALIBRATION_K,
                                      max_new, cfg.seed + 7, cfg.temperature,
                                      cfg.min_new_tokens))
        return drawn[0]

    extra = dict(base=base_model, cfg=live or cfg, generator=generator, calibration=calibration)
    if restored is not None:
        model, rankings, metrics = restored
        return LearnedReward(task, model, metrics, rankings, **extra)
    if cfg.reward_model:
        model, metrics, rankings = _named_source(cfg, task, device, data_dir, with_true_rewards)
        if not model.calibrated:   # saved before models were standardised
            model.calibrate(*calibration(), max_new)
        return LearnedReward(task, model, metrics, rankings, **extra)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    rankings = collect_rankings(base_model, task, annotator, cfg.rm_rankings, cfg.rm_k, max_new,
                                rng, gen, cfg.temperature, progress,
                                min_new_tokens=cfg.min_new_tokens)
    model, metrics = train_reward_model(base_model, rankings, cfg.rm_loss, cfg.rm_steps,
                                        cfg.rm_lr, max_new, cfg.seed, progress=progress,
                                        members=cfg.rm_members, negatives=cfg.rm_negatives,
                                        calibration=calibration())
    return LearnedReward(task, model, metrics, rankings, **extra)


def _named_source(cfg, task, device, data_dir, with_true_rewards):
    from core.reward_learning.rankings import RankingStore
    from core.reward_learning.reward_model_store import load_reward_model

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
    return model, metrics, rankings
