"""One trainer loop for every objective: rollout -> reward -> advantages -> update.

`Trainer.step()` runs one step and returns a `StepResult` (metrics dict named as in DESIGN.md, a
few samples, the edits applied). The CLI, the GUI's worker thread and the tests all drive this
class. Pause, stop and mid-run edits go through a lock-protected mailbox read at step boundaries,
because a busy loop on a worker thread runs no Qt events.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.algorithms import PolicyOutput, Rollout, make_objective
from core.batching import encode_prompts
from core.checkpoints import load_checkpoint, resolve_device
from core.config import RunConfig, check_live_changes, live_fields
from core.kl import AdaptiveKLController, FixedKLController, kl_estimate
from core.model import ValueHead, frozen_copy, sequence_logprobs
from core.reward_sources import make_reward_source
from core.tasks import get_task
from core.tensor_utils import masked_mean
from core.tokenizer import TOKENIZER

log = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"


def default_checkpoint(task: str) -> Path:
    return ASSETS_DIR / f"{task}.safetensors"


@dataclass(frozen=True)
class StepResult:
    step: int
    metrics: dict[str, float]
    samples: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


class Trainer:
    def __init__(self, cfg: RunConfig, progress=None, data_dir=None, feedback=None,
                 run_label: str = "run"):
        """progress(phase: str, done: int, total: int) reports long set-up work (reward model).
        data_dir holds named reward models and the rankings store; feedback ranks the groups of
        an iterated round (default: the simulated annotator; `core.feedback`)."""
        self.cfg = cfg
        self.progress, self.data_dir, self.run_label = progress, data_dir, run_label
        self.feedback = feedback
        self._round_asked = threading.Event()
        self._round_out: tuple[list[dict], dict] = ([], {})
        self._snapshots: list = []      # Futures waiting for a copy of the policy
        self._ended = False
        self.step_index = 0
        self._lock = threading.Lock()
        self._pending: dict = {}
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 2) - 1))
        torch.manual_seed(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.rng = np.random.default_rng(cfg.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.task = get_task(cfg.task)
        self.tok = TOKENIZER
        path = Path(cfg.checkpoint) if cfg.checkpoint else default_checkpoint(cfg.task)
        if not path.exists():
            raise ValueError(f"no base model at {path}; create it with "
                             f"`rlhf-explorer pretrain --task {cfg.task}`")
        self.policy, self.base_meta = load_checkpoint(path, self.device)
        self.reference = frozen_copy(self.policy)
        self.objective = make_objective(cfg)
        params = list(self.policy.parameters())
        self.value_head = None
        if self.objective.needs_value_head:
            self.value_head = ValueHead(self.policy.config.n_embd).to(self.device)
            params += list(self.value_head.parameters())
        self.params = params
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr)
        self.controller = self._make_controller(cfg)
        self.reward_source = make_reward_source(cfg, self.task, self.reference, self.device,
                                                self.rng, progress, data_dir)
        self.max_new_tokens = cfg.max_new_tokens or self.task.max_new_tokens
        self._t0 = time.perf_counter()

    @staticmethod
    def _make_controller(cfg):
        if cfg.kl_controller == "fixed":
            return FixedKLController(cfg.beta)
        # beta = 0 is "no KL to the reference": the adaptive rule keeps it at 0 (never lifts it
        # to beta_min), and a live edit can turn it on again.
        return AdaptiveKLController(cfg.beta, cfg.kl_target, beta_min=cfg.beta_min,
                                    beta_max=cfg.beta_max, interval=cfg.kl_interval)

    # --- control from other threads (the GUI) or a signal handler (the CLI)
    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def request_snapshot(self):
        """A Future for a frozen CPU copy of the policy, taken at the next step boundary (or
        at once while paused), so another thread can sample from the running policy without
        reading weights mid-update."""
        from concurrent.futures import Future

        future = Future()
        with self._lock:
            if self._ended:
                future.cancel()
            else:
                self._snapshots.append(future)
        return future  # cancelled if the run ends first

    def serve_snapshots(self) -> None:
        """Hand out the copies asked for. Only the training thread may call it (it reads the
        policy); a Feedback waiting for a person calls it so that sampling goes on meanwhile."""
        self._serve_snapshots()

    def _serve_snapshots(self) -> None:
        with self._lock:
            waiting, self._snapshots = self._snapshots, []
        if waiting:
            copy = frozen_copy(self.policy).to("cpu")
            for future in waiting:
                future.set_result((copy, self.step_index))

    def request_round(self) -> None:
        """Ask for an iterated-RLHF round at the next step boundary (learned rewards only)."""
        self._round_asked.set()

    def request_changes(self, **changes) -> None:
        """Queue knob changes for the next step boundary; invalid ones raise ValueError now."""
        with self._lock:
            check_live_changes(self.cfg, {**self._pending, **changes})
            self._pending.update(changes)

    def live_values(self) -> dict[str, float]:
        """Every live knob's value in effect now: what the loss and optimiser really use, which
        for beta is the controller's current value, not the configured start."""
        values = {k: getattr(self.cfg, k) for k in live_fields()}
        values["lr"] = self.optimizer.param_groups[0]["lr"]
        values["beta"] = self.controller.beta
        values["kl_target"] = getattr(self.controller, "target", self.cfg.kl_target)
        values.update(self.objective.live_values())
        return values

    def _apply_pending(self) -> list[dict]:
        """The one place live edits take effect; the event records the true old values."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return []
        before = self.live_values()
        old = {k: before[k] for k in pending}
        self.cfg = self.cfg.with_changes(**pending)
        self.objective.cfg = self.cfg
        if "lr" in pending:
            for group in self.optimizer.param_groups:
                group["lr"] = self.cfg.lr
        if "beta" in pending:
            self.controller.beta = self.cfg.beta
        if "kl_target" in pending and hasattr(self.controller, "target"):
            self.controller.target = self.cfg.kl_target
        self.objective.apply_live(pending)
        log.info("step %d: applied %s", self.step_index, pending)
        return [{"kind": "set", "step": self.step_index, "changes": dict(pending), "old": old}]

    # --- the loop
    def run(self):
        """Yield StepResults until cfg.steps or a stop; waits while paused."""
        try:
            while self.step_index < self.cfg.steps and not self._stop.is_set():
                self._serve_snapshots()
                while not self._running.wait(0.1):
                    self._serve_snapshots()
                if self._stop.is_set():
                    break
                yield self.step()
                if self._round_due():
                    self._feedback_round()
        finally:
            with self._lock:   # nobody waits forever on a run that has ended
                waiting, self._snapshots, self._ended = self._snapshots, [], True
            for future in waiting:
                future.cancel()

    def _round_due(self) -> bool:
        if self.reward_source.name != "learned" or self.step_index >= self.cfg.steps \
                or self._stop.is_set():
            return False
        every = self.cfg.feedback_every
        return self._round_asked.is_set() or bool(every and self.step_index % every == 0)

    def _feedback_round(self) -> None:
        """Rank the current policy's samples and update the reward model; the round's event and
        metrics go out with the next step."""
        from core.feedback import SimulatedFeedback, feedback_round

        self._round_asked.clear()
        if self.feedback is None:
            self.feedback = SimulatedFeedback(self.cfg.annotator_temperature, self.rng)
        event, metrics = feedback_round(self, self.feedback, self.progress)
        events, old = self._round_out
        self._round_out = (events + [event], {**old, **metrics})

    def _forward(self, model, batch: Rollout, with_value: bool) -> PolicyOutput:
        logp, ent, hidden = sequence_logprobs(
            model, batch.input_ids, batch.attention_mask, batch.prompt_len,
            temperature=self.cfg.temperature, return_entropy=True, return_hidden=with_value)
        # The critic reads the policy's hidden states but trains only its own head: with the
        # value loss flowing into the shared trunk, PPO at lr 4e-5 collapsed into noise within
        # 100 steps (KL 270 nats), its targets growing with the KL penalty they fed.
        values = self.value_head(hidden.detach()) if with_value else None
        # Padded slots hold arbitrary log-probs (-200 at temperature 0.1): every estimator and
        # ratio masks its log-ratio before exp (core.kl.kl_estimate, the surrogates), so none can
        # overflow on them.
        return PolicyOutput(logp, ent, values)

    def step(self) -> StepResult:
        events = self._apply_pending()
        cfg, t_start = self.cfg, time.perf_counter()
        beta = self.controller.beta

        prompts = [p for p in self.task.sample_prompts(cfg.prompts_per_step, self.rng)
                   for _ in range(cfg.group_size)]
        prompt_ids, prompt_mask = encode_prompts(prompts, self.device)
        self.policy.eval()
        sample = self.policy.generate(prompt_ids, prompt_mask, self.max_new_tokens,
                                      temperature=cfg.temperature, top_k=cfg.top_k or None,
                                      eos_id=self.tok.eos_id, generator=self.generator)
        t_sampled = time.perf_counter()
        mask = sample.mask
        input_ids = torch.cat([prompt_ids, sample.tokens], dim=1)
        attention_mask = torch.cat([prompt_mask, mask], dim=1)
        completions = [self.tok.decode(row) for row in sample.tokens.tolist()]
        scored = self.reward_source.score(prompts, completions, input_ids, attention_mask,
                                          cfg.group_size)
        scores = torch.as_tensor(scored.scores, device=self.device)

        with torch.no_grad():
            P = prompt_ids.shape[1]
            logp_ref = sequence_logprobs(self.reference, input_ids, attention_mask, P,
                                         temperature=cfg.temperature).logprobs
            logp_old, values_old = sample.logprobs, None
            if self.objective.needs_old_logp_pass() or self.value_head is not None:
                first = Rollout(input_ids, attention_mask, P, mask, logp_old, logp_ref, None,
                                scores, cfg.group_size)
                out = self._forward(self.policy, first, self.value_head is not None)
                logp_old, values_old = out.logp, out.values
        batch = Rollout(input_ids, attention_mask, P, mask, logp_old * mask, logp_ref * mask,
                        values_old, scores, cfg.group_size, max_new_tokens=self.max_new_tokens)
        batch, metrics = self.objective.prepare(batch, beta)
        metrics.update(self._update(batch, beta))
        if hasattr(self.controller, "target"):
            metrics["kl/target"] = float(self.controller.target)
        if self.objective.measures_update:
            self.policy.eval()
            with torch.no_grad():
                logp_new = self._forward(self.policy, batch, False).logp
            metrics.update(self.objective.after_update(batch, logp_new))

        kl_seq = {k: float(kl_estimate(batch.logp_old, batch.logp_ref, k, mask=mask).sum(1).mean())
                  for k in ("k1", "k2", "k3")}
        self.controller.update(kl_seq[cfg.kl_estimator])
        step_s = time.perf_counter() - t_start
        n_tokens = float(mask.sum())
        metrics.update({
            "step": float(self.step_index),
            "time_s": time.perf_counter() - self._t0,
            "reward/mean": float(scored.scores.mean()),
            "reward/std": float(scored.scores.std()),
            "reward/true_mean": float(scored.true.mean()),
            "kl/mean": kl_seq[cfg.kl_estimator],
            "kl/k1": kl_seq["k1"],
            "kl/k3": kl_seq["k3"],
            "kl/beta": float(beta),
            # the values the loss and optimiser used this step, so live edits show in every CSV
            "hparams/lr": float(self.optimizer.param_groups[0]["lr"]),
            "hparams/clip_eps": float(cfg.clip_eps),
            "hparams/temperature": float(cfg.temperature),
            "completions/mean_length": n_tokens / mask.shape[0],
            "perf/step_s": step_s,
            "perf/sample_s": t_sampled - t_start,
            "perf/tokens_per_s": n_tokens / step_s,
        })
        samples = [
            {"prompt": p, "completion": c, "reward": float(r), "true_reward": float(t)}
            for p, c, r, t in list(zip(prompts, completions, scored.scores, scored.true,
                                       strict=True))[:: max(1, cfg.group_size // 2)]
        ][: cfg.samples_per_step]
        if self.step_index == 0:
            metrics.update(self.reward_source.metrics)
        round_events, round_metrics = self._round_out
        self._round_out = ([], {})
        metrics.update(round_metrics)
        result = StepResult(self.step_index, metrics, samples, events + round_events)
        self.step_index += 1
        return result

    def _update(self, batch: Rollout, beta: float) -> dict[str, float]:
        cfg = self.cfg
        self.policy.train()
        sums: dict[str, float] = {}
        count, entropy_first = 0, None
        B = batch.input_ids.shape[0]
        for _ in range(cfg.epochs):
            order = torch.randperm(B, generator=self.generator, device=self.device)
            for idx in order.chunk(cfg.minibatches):
                mb = batch.select(idx)
                out = self._forward(self.policy, mb, self.value_head is not None)
                loss, metrics = self.objective.loss(out, mb, beta)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm > 0:
                    norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                    metrics["policy/grad_norm"] = norm
                self.optimizer.step()
                if entropy_first is None:
                    entropy_first = float(masked_mean(out.entropy.detach(), mb.mask))
                metrics["loss/total"] = loss.detach()
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
        out = {k: v / count for k, v in sums.items()}
        out["policy/entropy"] = entropy_first
        return out

    # --- persistence
    def save_policy(self, path) -> None:
        from core.checkpoints import save_checkpoint

        save_checkpoint(path, self.policy, {"step": self.step_index, "config": self.cfg.to_dict(),
                                            "base": self.base_meta})
