"""Human feedback: sample groups to rank, train a named reward model from stored rankings, and
iterated RLHF (pause, rank the current policy's samples, update the reward model, go on).

Iterated rounds follow InstructGPT and rl-teacher: every `feedback_every` steps (or when asked)
the trainer samples `feedback_groups` prompts x `rm_k` completions from the CURRENT policy, a
`Feedback` ranks them (a person in the window, or the simulated annotator), and the reward model
continues training for `rm_round_steps` updates on every ranking so far. The reward the policy
sees then moves, which is the point: the proxy is re-fitted where the policy now samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import torch

from core.annotator import SimulatedAnnotator
from core.batching import encode_pairs, encode_prompts
from core.rankings import SOURCES
from core.reward_model import Ranking, train_reward_model, with_true_rewards
from core.sampling import generate
from core.tokenizer import TOKENIZER

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Group:
    """K sampled responses to one prompt, waiting for a ranking."""
    task: str
    prompt: str
    responses: tuple[str, ...]
    policy: str                         # what sampled them: "base", "run ID step N", a path
    true: tuple[float, ...] = ()        # the hidden true reward (shown only when asked)
    rm_scores: tuple[float, ...] = ()   # the current reward model's scores, if there is one


@torch.no_grad()
def sample_groups(model, task, prompts: list[str], k: int, max_new_tokens: int,
                  temperature: float, generator: torch.Generator, policy: str,
                  reward_model=None, min_new_tokens: int = 0) -> list[Group]:
    """k completions of each prompt from `model`, scored by the task and the reward model;
    sampled as the run samples (min_new_tokens included), so what is ranked is what is trained."""
    device = next(model.parameters()).device
    rows = [p for p in prompts for _ in range(k)]
    ids, mask = encode_prompts(rows, device)
    was_training = model.training
    model.eval()
    sample = generate(model, ids, mask, max_new_tokens, temperature=temperature,
                      eos_id=TOKENIZER.eos_id, generator=generator,
                      min_new_tokens=min_new_tokens)
    model.train(was_training)
    texts = [TOKENIZER.decode(r) for r in sample.tokens.tolist()]
    try:
        true = np.asarray(task.true_rewards(rows, texts), dtype=float).reshape(len(prompts), k)
    except (ValueError, KeyError, IndexError):  # a typed prompt the task cannot score
        true = None
    scores = None
    if reward_model is not None:
        rids, rmask, _ = encode_pairs(rows, texts, max_new_tokens, device)
        scores = reward_model.score(rids, rmask).float().cpu().numpy().reshape(len(prompts), k)
    return [Group(task.name, p, tuple(texts[i * k:(i + 1) * k]), policy,
                  () if true is None else tuple(float(x) for x in true[i]),
                  () if scores is None else tuple(float(x) for x in scores[i]))
            for i, p in enumerate(prompts)]


class SimulatedFeedback:
    """The simulated annotator standing in for the person: ranks each group from its true reward
    (Plackett-Luce noise, `core.annotator`). With a rankings store, every ranking is stored as
    source "simulated", like a person's would be."""

    def __init__(self, temperature: float, rng: np.random.Generator, store=None):
        self.annotator = SimulatedAnnotator(temperature, rng)
        self.store = store

    def rank(self, groups: list[Group]) -> list[Ranking]:
        if not groups:
            return []
        ranks = self.annotator.rank(np.array([g.true for g in groups]))
        out = []
        for g, r in zip(groups, ranks, strict=True):
            ranking = Ranking(g.prompt, g.responses, tuple(int(x) for x in r), g.true)
            if self.store is not None:
                self.store.add(g.task, g.prompt, g.responses, ranking.ranks, "simulated",
                               g.policy, true=g.true)
            out.append(ranking)
        return out


def feedback_round(trainer, feedback, progress=None) -> tuple[dict, dict[str, float]]:
    """One iterated-RLHF round on `trainer`'s current policy: (event, rm metrics). Runs on the
    trainer's thread, between steps."""
    cfg, source = trainer.cfg, trainer.reward_source
    prompts = trainer.task.sample_prompts(cfg.feedback_groups, trainer.rng)
    groups = sample_groups(trainer.policy, trainer.task, prompts, cfg.rm_k, trainer.max_new_tokens,
                           cfg.temperature, trainer.generator,
                           f"{trainer.run_label} step {trainer.step_index}", source.model,
                           min_new_tokens=cfg.min_new_tokens)
    new = list(feedback.rank(groups) or [])
    metrics: dict[str, float] = {}

    def report(*args) -> None:
        # A set-up progress callback may raise to cancel a run (core.session.RunCancelled); in a
        # round the `stop` below ends training instead, and the run saves its last checkpoint.
        if progress and not trainer.control.stop_requested:
            try:
                progress(*args)
            except Exception:  # noqa: BLE001 (see above)
                pass

    if new and not trainer.control.stop_requested:
        metrics = source.update(new, cfg, trainer.max_new_tokens, report,
                                stop=lambda: trainer.control.stop_requested)
    event = {"kind": "feedback_round", "step": trainer.step_index, "new_rankings": len(new),
             "rankings": len(source.rankings), **metrics}
    log.info("feedback round at step %d: %d new rankings, %s", trainer.step_index, len(new),
             metrics)
    return event, metrics


def train_from_store(data_dir, task_name: str, loss: str = "bradley_terry",
                     sources=SOURCES, name: str | None = None,
                     steps: int = 150, lr: float = 3e-4, seed: int = 0, device="cpu",
                     progress=None, on_step=None, stop=None):
    """Train a reward model on the stored rankings of `task_name` (the chosen sources) and, with
    a name, save it. Returns (model, metrics, meta)."""
    from core.checkpoints import default_checkpoint, load_checkpoint
    from core.rankings import RankingStore
    from core.reward_model_store import check_name, save_reward_model
    from core.tasks import get_task

    task = get_task(task_name)
    if name is not None:
        check_name(name)
    with RankingStore(data_dir) as store:
        stored = store.list(task=task_name, sources=sources, rankable_only=True)
    if not stored:
        raise ValueError(f"no stored rankings of task {task_name!r} from {', '.join(sources)}; "
                         "rank some in the window or `rlhf-explorer rankings import FILE "
                         f"--task {task_name}`")
    rankings = with_true_rewards([r.to_training() for r in stored], task)
    base, _ = load_checkpoint(default_checkpoint(task_name), device)
    model, metrics = train_reward_model(base, rankings, loss, steps, lr, task.max_new_tokens,
                                        seed, progress=progress, on_step=on_step, stop=stop)
    meta = {"task": task_name, "loss": loss, "sources": list(sources),
            "rankings": len(rankings), "ranking_ids": [r.id for r in stored],
            "steps": steps, "lr": lr, "seed": seed, "metrics": metrics,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if name is not None:
        save_reward_model(data_dir, name, model, meta)
    return model, metrics, meta
