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

from core.lm.batching import encode_pairs, encode_prompts
from core.lm.sampling import generate
from core.lm.tokenizer import TOKENIZER
from core.reward_learning.annotator import SimulatedAnnotator
from core.reward_learning.rankings import SOURCES
from core.reward_learning.reward_model import Ranking
from core.reward_learning.reward_training import train_reward_model, with_true_rewards

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
    (Plackett-Luce noise, `core.reward_learning.annotator`). With a rankings store, every ranking
    is stored as
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


class JudgeFailed(ValueError):
    """A judge program failed, hung or wrote a line that is not a ranking: the run stops, saved,
    and this one line says which judge and what went wrong."""


class CommandFeedback:
    """A program ranks (`feedback_by=command`): a rule, a script or a local language model
    (RLAIF). Each round it is started with the groups as JSONL on stdin, one object a line:

        {"group": 0, "prompt": "the film", "responses": ["was good.", "is dull."]}

    and writes one ranking a line on stdout, in any order, every group once:

        {"group": 0, "ranks": [1, 2]}        (1 = best; equal numbers tie)

    or {"group": 0, "ranks": null} for a group it cannot rank. Every line that is a ranking is
    stored (source "judge") as soon as it is read, so a judge that fails later loses none of them.
    A judge that exits non-zero, runs past `timeout` seconds, or writes anything else raises
    `JudgeFailed`."""

    def __init__(self, command: str, timeout: float, store=None):
        if not command.strip():
            raise ValueError("feedback_by=command needs feedback_command: the judge program to "
                             "run (docs/human_feedback.md has an example)")
        self.command, self.timeout, self.store = command, float(timeout), store

    def _fail(self, what: str) -> JudgeFailed:
        return JudgeFailed(f"judge `{self.name}` {what}")

    @property
    def name(self) -> str:
        """The command as a person would say it: paths by their last part, at most 60
        characters ("python judge.py --seed 3")."""
        import os
        import shlex

        try:
            words = shlex.split(self.command)
        except ValueError:
            words = self.command.split()
        shown = " ".join(os.path.basename(w) if "/" in w else w for w in words)
        return shown if len(shown) <= 60 else shown[:57] + "..."

    def _run(self, text: str) -> tuple[str, str | None]:
        """(what the judge wrote, what went wrong or None). A judge that hangs is killed, its
        shell and whatever that started with it, and what it wrote before is kept."""
        import os
        import signal
        import subprocess

        try:
            proc = subprocess.Popen(self.command, shell=True, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True)
        except OSError as exc:
            raise self._fail(f"could not start: {exc}") from exc
        try:
            out, err = proc.communicate(text, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()   # what it had written: its complete lines count
            return out or "", f"gave no answer within {self.timeout:g} s (feedback_timeout)"
        if proc.returncode != 0:
            last = (err or "").strip().splitlines()
            return out or "", (f"exited with status {proc.returncode}"
                               + (f": {last[-1][:160]}" if last else ""))
        return out, None

    def rank(self, groups: list[Group]) -> list[Ranking]:
        import json

        from core.reward_learning.rankings import check_ranking

        if not groups:
            return []
        text = "".join(json.dumps({"group": i, "prompt": g.prompt, "responses": list(g.responses)})
                       + "\n" for i, g in enumerate(groups))
        out, problem = self._run(text)
        lines = out.splitlines()
        if problem and lines and not out.endswith("\n"):
            lines.pop()   # a line cut off by the failure is no ranking
        got: dict[int, Ranking | None] = {}
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                i = item["group"]
                if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(groups):
                    raise ValueError(f"no group {i!r} was asked for")
                if i in got:
                    raise ValueError(f"group {i} ranked twice")
                g = groups[i]
                _, ranks = check_ranking(list(g.responses), item["ranks"])
            except (ValueError, KeyError, TypeError) as exc:
                what = "not JSON" if isinstance(exc, json.JSONDecodeError) else (
                    f"no {exc}" if isinstance(exc, KeyError) else str(exc))
                raise self._fail(f"wrote a bad line {n} ({what}): {line[:80]!r}") from None
            if self.store is not None:
                self.store.add(g.task, g.prompt, g.responses, ranks, "judge", g.policy,
                               true=g.true)
            got[i] = None if ranks is None else Ranking(g.prompt, g.responses, ranks, g.true)
        if problem:
            raise self._fail(problem)
        missing = [i for i in range(len(groups)) if i not in got]
        if missing:
            raise self._fail(f"ranked {len(got)} of {len(groups)} groups (no line for group "
                             f"{missing[0]})")
        return [got[i] for i in range(len(groups)) if got[i] is not None]


def win_rate(ranked: list[tuple[tuple[int, ...], int]]) -> float:
    """The share of policy samples a person ranked above the base model's sample of the same
    prompt, ties counting half (InstructGPT's win rate). ranked: (ranks, index of the base
    sample among them) per group; NaN with no policy sample."""
    wins = total = 0.0
    for ranks, b in ranked:
        for j, r in enumerate(ranks):
            if j == b:
                continue
            wins += 1.0 if r < ranks[b] else 0.5 if r == ranks[b] else 0.0
            total += 1
    return wins / total if total else float("nan")


def most_unsure(spreads, n: int) -> list[int]:
    """The indices of the n groups whose responses the members disagree on most (their mean
    spread), in the order they were sampled (Christiano et al. 2017's query selection)."""
    spreads = np.asarray(spreads, dtype=float)
    top = np.argsort(-spreads, kind="stable")[:n]
    return sorted(int(i) for i in top)


@torch.no_grad()
def group_spreads(model, groups: list[Group], max_new_tokens: int) -> np.ndarray:
    """Each group's mean member spread on its responses
    (`core.reward_learning.reward_model.spread`)."""
    from core.reward_learning.reward_model import spread

    rows = [g.prompt for g in groups for _ in g.responses]
    texts = [t for g in groups for t in g.responses]
    device = model.center.device
    ids, mask, _ = encode_pairs(rows, texts, max_new_tokens, device)
    per = spread(model.standardized(ids, mask).float()).cpu().numpy()
    out, at = [], 0
    for g in groups:
        out.append(per[at:at + len(g.responses)].mean())
        at += len(g.responses)
    return np.array(out)


def with_base_sample(group: Group, base: Group, at: int) -> Group:
    """`group` with the base model's one response put in at position `at`, blind: the person
    sees K + 1 responses and nothing says which is the base model's."""
    def put(seq, item):
        return tuple(seq[:at]) + (item,) + tuple(seq[at:]) if seq else ()

    true = put(group.true, base.true[0]) if group.true and base.true else ()
    scores = put(group.rm_scores, base.rm_scores[0]) if group.rm_scores and base.rm_scores \
        else ()
    return Group(group.task, group.prompt, put(group.responses, base.responses[0]),
                 group.policy, true, scores)


@dataclass(frozen=True)
class RoundContext:
    """What a round needs from the run, and nothing else: the trainer makes one per round."""
    cfg: object                 # the live RunConfig
    task: object
    policy: object              # samples the groups
    reference: object           # the base model: the blind base sample
    learner: object             # what learns from the rankings (Objective.round_learner): it
                                # has `model` (members that choose the groups, or None),
                                # `rankings`, `fresh_accuracy(...)` and `update(...)`
    rng: np.random.Generator
    generator: torch.Generator
    max_new_tokens: int
    label: str                  # what sampled them: "run ID step N"
    step: int
    reason: str                 # why the round is asked: asked, every, unsure
    stopped: object             # () -> bool: the run was asked to stop


def round_groups(ctx: RoundContext) -> tuple[list[Group], dict[tuple, int]]:
    """The groups a round asks about, and where each group's blind base sample is (keyed by
    prompt and responses). The policy samples `feedback_pool` times the groups needed; the
    ones its reward model's members disagree on most are asked (with one member, a pool of 1,
    or no reward model (online DPO), the first ones)."""
    cfg = ctx.cfg
    model = ctx.learner.model   # None: nothing to score with
    pool = cfg.feedback_pool if model is not None and model.n_members > 1 else 1
    prompts = ctx.task.sample_prompts(cfg.feedback_groups * pool, ctx.rng)
    groups = sample_groups(ctx.policy, ctx.task, prompts, cfg.rm_k, ctx.max_new_tokens,
                           cfg.temperature, ctx.generator, ctx.label, model,
                           min_new_tokens=cfg.min_new_tokens)
    if pool > 1:
        keep = most_unsure(group_spreads(model, groups, ctx.max_new_tokens), cfg.feedback_groups)
        groups = [groups[i] for i in keep]
    where: dict[tuple, int] = {}
    if cfg.feedback_base_sample:
        bases = sample_groups(ctx.reference, ctx.task, [g.prompt for g in groups], 1,
                              ctx.max_new_tokens, cfg.temperature, ctx.generator, ctx.label,
                              model, min_new_tokens=cfg.min_new_tokens)
        mixed = []
        for g, b in zip(groups, bases, strict=True):
            at = int(ctx.rng.integers(len(g.responses) + 1))
            g = with_base_sample(g, b, at)
            where[(g.prompt, g.responses)] = at
            mixed.append(g)
        groups = mixed
    return groups, where


def feedback_round(ctx: RoundContext, feedback, progress=None) -> tuple[dict, dict[str, float]]:
    """One iterated-RLHF round on the run's current policy: (event, metrics). Runs on the
    trainer's thread, between steps. What learns from the new rankings is `ctx.learner` (the
    objective's `round_learner`): the learned reward model, or DPO itself.

    Before the reward model trains on the new rankings it is scored on them
    (`rm/fresh_accuracy`): how well it predicted what the person now says about the policy's
    samples, the honest measure of over-optimisation (online DPO's is `dpo/fresh_accuracy`, its
    implicit reward's). With a base sample in each group the ranks also give `eval/win_rate`."""
    cfg, learner = ctx.cfg, ctx.learner
    groups, where = round_groups(ctx)
    new = list(feedback.rank(groups) or [])
    metrics: dict[str, float] = {}
    if new:
        metrics.update(learner.fresh_accuracy(new, ctx.max_new_tokens))
    placed = [(r.ranks, where[(r.prompt, r.responses)]) for r in new
              if (r.prompt, r.responses) in where]
    if placed:
        metrics["eval/win_rate"] = win_rate(placed)

    def report(*args) -> None:
        # A set-up progress callback may raise to cancel a run (core.store.session.RunCancelled);
        # in a
        # round the `stop` below ends training instead, and the run saves its last checkpoint.
        if progress and not ctx.stopped():
            try:
                progress(*args)
            except Exception:  # noqa: BLE001 (see above)
                pass

    if new and not ctx.stopped():
        metrics.update(learner.update(new, cfg, ctx.max_new_tokens, report, stop=ctx.stopped))
    event = {"kind": "feedback_round", "step": ctx.step, "new_rankings": len(new),
             "rankings": len(learner.rankings), "why": ctx.reason,
             "base_at": [at for _, at in placed], **metrics}
    log.info("feedback round at step %d (%s): %d new rankings, %s", ctx.step, ctx.reason,
             len(new), metrics)
    return event, metrics


def train_from_store(data_dir, task_name: str, loss: str = "bradley_terry",
                     sources=SOURCES, name: str | None = None,
                     steps: int = 150, lr: float = 3e-4, seed: int = 0, device="cpu",
                     progress=None, on_step=None, stop=None, members: int | None = None,
                     negatives: float | None = None):
    """Train a reward model on the stored rankings of `task_name` (the chosen sources),
    standardised on base-model samples, and, with a name, save it. members and negatives default
    to the learned source's (`rm_members`, `rm_negatives`). Returns (model, metrics, meta)."""
    from core.config import RunConfig
    from core.lm.checkpoints import default_checkpoint, load_checkpoint
    from core.reward_learning.rankings import RankingStore
    from core.reward_learning.reward_model_store import check_name, save_reward_model
    from core.reward_learning.reward_sources import CALIBRATION_K, CALIBRATION_PROMPTS
    from core.reward_learning.reward_training import base_samples
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
    defaults = RunConfig()
    members = defaults.rm_members if members is None else members
    negatives = defaults.rm_negatives if negatives is None else negatives
    # the samples a run standardises on (make_reward_source) for the same seed
    calibration = base_samples(base, task, CALIBRATION_PROMPTS, CALIBRATION_K,
                               task.max_new_tokens, seed + 7)
    model, metrics = train_reward_model(base, rankings, loss, steps, lr, task.max_new_tokens,
                                        seed, progress=progress, on_step=on_step, stop=stop,
                                        members=members, negatives=negatives,
                                        calibration=calibration)
    meta = {"task": task_name, "loss": loss, "sources": list(sources),
            "members": model.n_members, "negatives": negatives,
            "rankings": len(rankings), "ranking_ids": [r.id for r in stored],
            "steps": steps, "lr": lr, "seed": seed, "metrics": metrics,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if name is not None:
        save_reward_model(data_dir, name, model, meta)
    return model, metrics, meta
