"""One trainer loop for every objective: rollout -> reward -> advantages -> update.

`Trainer.step()` runs one step and returns a `StepResult` (metrics named as in docs/metrics.md, a
few samples, the edits applied). The CLI, the GUI's worker thread and the tests all drive this
class. Pause, stop and mid-run edits go through the run's `RunControl` (core/rl/run_control.py),
read at step boundaries, because a busy loop on a worker thread runs no Qt events. A loss, reward,
gradient or parameter that goes non-finite raises `core.rl.faults.Diverged` before it can spread.
`core.store.train_state` saves and restores everything a resume needs.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.algorithms import PolicyOutput, Rollout, make_objective
from core.algorithms.base import load_plain, plain_state
from core.config import RunConfig, live_fields
from core.kl import kl_estimate, make_controller
from core.lm.batching import encode_prompts
from core.lm.checkpoints import default_checkpoint, load_checkpoint, resolve_device
from core.lm.model import ValueHead, frozen_copy, sequence_logprobs
from core.lm.sampling import generate
from core.lm.threads import resolve_threads, sampling_threads
from core.lm.tokenizer import TOKENIZER
from core.reward_learning.reward_sources import make_reward_source
from core.rl.faults import Diverged, check_params, nonfinite
from core.rl.rounds import Rounds
from core.rl.run_control import RunCancelled, RunControl
from core.tasks import get_task
from core.tensor_utils import masked_mean

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class StepResult:
    step: int
    metrics: dict[str, float]
    samples: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


class Trainer:
    def __init__(self, cfg: RunConfig, progress=None, data_dir=None, feedback=None,
                 run_label: str = "run", control: RunControl | None = None, restore=None,
                 beside_gui: bool = False):
        """progress(phase: str, done: int, total: int) reports long set-up work (reward model).
        data_dir holds named reward models and the rankings store; feedback ranks the groups of
        an iterated round (default: the simulated annotator; `core.reward_learning.feedback`).
        control is the
        run's RunControl (made here when not given); restore, a `core.store.train_state.TrainState`
        to carry on from (its reward model replaces set-up training). beside_gui: the window
        shares the cores, which changes the automatic thread counts (core/lm/threads.py)."""
        self.control = control or RunControl(cfg)
        if control is not None and control.cfg is not cfg:
            self.control.commit(cfg)
        self.progress, self.data_dir, self.run_label = progress, data_dir, run_label
        self.feedback = feedback
        self.rounds = Rounds()   # iterated rounds: when the next is due, what the last ones said
        self.step_index = 0
        self.threads = resolve_threads(cfg.threads, beside_gui)
        self.sample_threads = sampling_threads(cfg.threads, beside_gui)
        torch.set_num_threads(self.threads)
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
        self.objective = make_objective(cfg, live=self.control)
        params = list(self.policy.parameters())
        self.value_head = None
        if self.objective.needs_value_head:
            self.value_head = ValueHead(self.policy.config.n_embd).to(self.device)
            params += list(self.value_head.parameters())
        self.params = params
        self.optimizer = _adam(params, cfg.lr)
        self.controller = self._make_controller(cfg)
        self.reward_source = make_reward_source(
            cfg, self.task, self.reference, self.device, self.rng, self._setup_progress,
            data_dir, restored=restore.reward_model(self) if restore else None,
            generator=self.generator, live=lambda: self.control.cfg)
        self.max_new_tokens = cfg.max_new_tokens or self.task.max_new_tokens
        self.objective.setup(self)
        self._t0 = time.perf_counter()
        if restore is not None:
            restore.apply(self)
        self.control.trainer_ready(self.takes_rounds())

    @property
    def cfg(self) -> RunConfig:
        """The live config: the run control owns it (one copy, which edits replace)."""
        return self.control.cfg

    def _setup_progress(self, name: str, done: int, total: int) -> None:
        self.control.check_cancelled()   # a stop during set-up ends it (RunCancelled)
        if self.progress:
            self.progress(name, done, total)

    @staticmethod
    def _make_controller(cfg):
        # beta = 0 is "no KL to the reference": the adaptive rule keeps it at 0 (never lifts it
        # to beta_min), and a live edit can turn it on again.
        return make_controller(cfg.kl_controller, cfg.beta, cfg.kl_target, beta_min=cfg.beta_min,
                               beta_max=cfg.beta_max, interval=cfg.kl_interval)

    # --- control lives on `self.control` (core/rl/run_control.py); this serves what it asks
    def serve_snapshots(self) -> None:
        """Hand out the copies of the policy asked for. Only the training thread may call it (it
        reads the policy); a Feedback waiting for a person calls it so sampling goes on."""
        waiting = self.control.take_snapshots()
        if waiting:
            copy = frozen_copy(self.policy).to("cpu")
            for future in waiting:
                future.set_result((copy, self.step_index))

    def live_values(self) -> dict[str, float]:
        """Every live knob's value in effect now: what the loss and optimiser really use, which
        for beta is the controller's current value, not the configured start."""
        values = {k: getattr(self.cfg, k) for k in live_fields()}
        values["lr"] = self.optimizer.param_groups[0]["lr"]
        values["beta"] = self.controller.beta
        target = self.controller.target   # None when beta is fixed: the configured one then
        values["kl_target"] = self.cfg.kl_target if target is None else target
        values.update(self.objective.live_values())
        return values

    def _apply_pending(self) -> list[dict]:
        """The one place live edits take effect; the event records the true old values."""
        pending = self.control.take_changes()
        if not pending:
            return []
        before = self.live_values()
        old = {k: before[k] for k in pending}
        self.control.commit(self.cfg.with_changes(**pending))
        if "lr" in pending:
            for group in self.optimizer.param_groups:
                group["lr"] = self.cfg.lr
        if "beta" in pending:
            self.controller.set_beta(self.cfg.beta)
        if "kl_target" in pending:
            self.controller.set_target(self.kl_budget())
        self.objective.apply_live(pending)
        log.info("step %d: applied %s", self.step_index, pending)
        return [{"kind": "set", "step": self.step_index, "changes": dict(pending), "old": old}]

    # --- the loop
    def run(self):
        """Yield StepResults until cfg.steps or a stop; waits while paused."""
        control = self.control
        try:
            control.set_up_done()
            while self.step_index < self.cfg.steps and not control.stop_requested:
                self.serve_snapshots()
                while not control.wait_if_paused(0.1):
                    self.serve_snapshots()
                if control.stop_requested:
                    break
                yield self.step()
                if self.round_due():
                    self._feedback_round()
        finally:
            control.end()   # nobody waits forever on a run that has ended

    def round_due(self) -> bool:
        """Whether to ask for a round now (`Rounds.due`, which says why in `rounds.reason`)."""
        if not self.takes_rounds() or self.step_index >= self.cfg.steps \
                or self.control.stop_requested:
            return False
        return self.rounds.due(self.cfg, self.step_index, asked=self.control.take_round())

    def takes_rounds(self) -> bool:
        """Whether rounds of feedback have something to train (a learned reward, online DPO)."""
        return self.objective.round_learner(self) is not None

    def _feedback_round(self) -> None:
        """Rank the current policy's samples and update the reward model; the round's event and
        metrics go out with the next step."""
        from core.reward_learning.feedback import RoundContext, SimulatedFeedback, feedback_round

        log.info("round at step %d: %s", self.step_index, self.rounds.reason)
        if self.feedback is None:
            self.feedback = SimulatedFeedback(self.cfg.annotator_temperature, self.rng)
        context = RoundContext(
            self.cfg, self.task, self.policy, self.reference, self.objective.round_learner(self),
            self.rng, self.generator, self.max_new_tokens,
            f"{self.run_label} step {self.step_index}", self.step_index, self.rounds.reason,
            lambda: self.control.stop_requested)
        try:
            event, metrics = feedback_round(context, self.feedback, self.progress)
        except RunCancelled:
            return
        self.rounds.record(self.step_index, event, metrics)
        if self.cfg.feedback_restart:
            self._restart_policy()
        self.controller.set_target(self.kl_budget())

    def kl_budget(self) -> float:
        """The adaptive rule's KL target: kl_target, widened by each round of feedback."""
        return self.cfg.kl_target + self.cfg.kl_target_per_round * self.rounds.done

    def _restart_policy(self) -> None:
        """`feedback_restart`: the policy, its optimiser's moments and β start again from the
        base model, as at step 0 (Wolf, Kirk, Musolesi 2025 found this robust between rounds);
        the step count, the reward model and every ranking go on."""
        self.policy.load_state_dict(self.reference.state_dict())
        self.optimizer.state.clear()
        self.controller = self._make_controller(self.cfg)
        log.info("step %d: the policy starts again from the base model", self.step_index)

    def _forward(self, model, batch: Rollout, with_value: bool, group: int = 1) -> PolicyOutput:
        """group: the rows are the step's groups in order, so each prompt runs once."""
        logp, ent, hidden = sequence_logprobs(
            model, batch.input_ids, batch.attention_mask, batch.prompt_len,
            temperature=self.cfg.temperature, return_entropy=True, return_hidden=with_value,
            group=group)
        # The critic reads the policy's hidden states but trains only its own head: with the
        # value loss flowing into the shared trunk, PPO at lr 4e-5 collapsed into noise within
        # 100 steps (KL 270 nats), its targets growing with the KL penalty they fed.
        values = self.value_head(hidden.detach()) if with_value else None
        # Padded slots hold arbitrary log-probs (-200 at temperature 0.1): every estimator and
        # ratio masks its log-ratio before exp (core.kl.kl_estimate, the surrogates), so none can
        # overflow on them.
        return PolicyOutput(logp, ent, values)

    def _clock(self) -> float:
        """perf_counter, after the device's queued work: CUDA runs asynchronously, so a phase's
        time would otherwise land in the next one."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def step(self) -> StepResult:
        """One step, in the lecture's phases: sample from the policy, score the samples, the
        reference's (and, if needed, the old policy's) pass, the update, then what it measured.
        Each phase's time is in `perf/*`."""
        events = self._apply_pending()
        cfg, t_start = self.cfg, time.perf_counter()
        beta = self.controller.beta
        prompts, prompt_ids, prompt_mask, sample = self._rollout()
        t_sampled = self._clock()
        completions, scored, input_ids, attention_mask = self._score(prompts, prompt_ids,
                                                                    prompt_mask, sample)
        t_rewarded = self._clock()
        batch = self._reference_pass(prompt_ids, input_ids, attention_mask, sample, scored)
        t_scored = self._clock()
        batch, metrics = self.objective.prepare(batch, beta)
        metrics.update(self._update(batch, beta))
        if self.controller.target is not None:
            metrics["kl/target"] = float(self.controller.target)
        if self.objective.measures_update:
            self.policy.eval()
            with torch.inference_mode():
                logp_new = self._forward(self.policy, batch, False, cfg.group_size).logp.clone()
            metrics.update(self.objective.after_update(batch, logp_new))
        t_updated = self._clock()
        metrics.update(self._measure(batch, scored, beta, t_start, t_sampled, t_rewarded,
                                     t_scored, t_updated))
        samples = [
            {"prompt": p, "completion": c, "reward": float(r), "true_reward": float(t)}
            for p, c, r, t in list(zip(prompts, completions, scored.scores, scored.true,
                                       strict=True))[:: max(1, cfg.group_size // 2)]
        ][: cfg.samples_per_step]
        if self.step_index == 0:
            metrics.update(self.reward_source.metrics)
        round_events, round_metrics = self.rounds.take_pending()
        metrics.update(round_metrics)
        result = StepResult(self.step_index, metrics, samples, events + round_events)
        self.step_index += 1
        return result

    def _rollout(self):
        """Phase 1: group_size samples of prompts_per_step prompts from the current policy."""
        cfg = self.cfg
        prompts = [p for p in self.task.sample_prompts(cfg.prompts_per_step, self.rng)
                   for _ in range(cfg.group_size)]
        prompt_ids, prompt_mask = encode_prompts(prompts, self.device)
        self.policy.eval()
        torch.set_num_threads(self.sample_threads)
        try:
            sample = generate(self.policy, prompt_ids, prompt_mask, self.max_new_tokens,
                              temperature=cfg.temperature, top_k=cfg.top_k or None,
                              eos_id=self.tok.eos_id, generator=self.generator,
                              min_new_tokens=cfg.min_new_tokens,
                              return_hidden=self.value_head is not None).trimmed()
        finally:   # whatever runs next on this thread gets the passes' count back
            torch.set_num_threads(self.threads)
        return prompts, prompt_ids, prompt_mask, sample

    def _score(self, prompts, prompt_ids, prompt_mask, sample):
        """Phase 2: the run's reward source scores the decoded samples (and the true reward)."""
        input_ids = torch.cat([prompt_ids, sample.tokens], dim=1)
        attention_mask = torch.cat([prompt_mask, sample.mask], dim=1)
        completions = [self.tok.decode(row) for row in sample.tokens.tolist()]
        scored = self.reward_source.score(prompts, completions, input_ids, attention_mask,
                                          self.cfg.group_size)
        bad = nonfinite(scored.scores)
        if bad:
            raise Diverged(self.step_index, f"reward is {bad}", params_intact=True)
        return completions, scored, input_ids, attention_mask

    def _reference_pass(self, prompt_ids, input_ids, attention_mask, sample, scored) -> Rollout:
        """Phase 3: the frozen reference's log-probs (and the old policy's own pass when
        sampling truncated it), making the step's Rollout."""
        cfg, mask = self.cfg, sample.mask
        scores = torch.as_tensor(scored.scores, device=self.device)
        P = prompt_ids.shape[1]
        with torch.inference_mode():   # ~10% faster than no_grad here; clone() below exits it
            logp_ref = sequence_logprobs(self.reference, input_ids, attention_mask, P,
                                         temperature=cfg.temperature,
                                         group=cfg.group_size).logprobs
            # The rollout already scored its tokens, and kept the states a critic reads: the
            # old policy needs a pass of its own only when sampling truncated it (top-k).
            logp_old, values_old = sample.logprobs, None
            if self.value_head is not None:
                values_old = self.value_head(sample.hidden)
            if self.objective.needs_old_logp_pass():
                first = Rollout(input_ids, attention_mask, P, mask, logp_old, logp_ref, None,
                                scores, cfg.group_size)
                out = self._forward(self.policy, first, self.value_head is not None,
                                    cfg.group_size)
                logp_old, values_old = out.logp, out.values
        # Inference tensors may not be saved for backward; these feed the loss as constants.
        logp_ref, logp_old = logp_ref.clone(), logp_old.clone()
        values_old = None if values_old is None else values_old.clone()
        return Rollout(input_ids, attention_mask, P, mask, logp_old * mask, logp_ref * mask,
                       values_old, scores, cfg.group_size, max_new_tokens=self.max_new_tokens)

    def _measure(self, batch: Rollout, scored, beta: float, t_start: float, t_sampled: float,
                 t_rewarded: float, t_scored: float, t_updated: float) -> dict[str, float]:
        """Phase 5: the KL the controller reads (and moves β by), and the step's metrics."""
        cfg, mask = self.cfg, batch.mask
        kl_seq = {k: float(kl_estimate(batch.logp_old, batch.logp_ref, k, mask=mask).sum(1).mean())
                  for k in ("k1", "k2", "k3")}
        self.controller.update(kl_seq[cfg.kl_estimator])
        step_s = time.perf_counter() - t_start
        n_tokens = float(mask.sum())
        metrics = dict(scored.metrics)
        self.rounds.observe(scored.metrics.get("rm/disagreement_ratio", math.nan))
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
            "perf/reward_s": t_rewarded - t_sampled,
            "perf/score_s": t_scored - t_rewarded,
            "perf/update_s": t_updated - t_scored,
            "perf/tokens_per_s": n_tokens / step_s,
        })
        return metrics

    def _update(self, batch: Rollout, beta: float) -> dict[str, float]:
        cfg = self.cfg
        self.policy.train()
        sums: dict[str, float] = {}
        count, entropy_first = 0, None
        B = batch.input_ids.shape[0]
        for _ in range(cfg.epochs):
            if cfg.minibatches == 1:   # one minibatch: order is moot, and groups stay whole
                minibatches, group = [batch], cfg.group_size
            else:
                order = torch.randperm(B, generator=self.generator, device=self.device)
                minibatches, group = [batch.select(i) for i in order.chunk(cfg.minibatches)], 1
            for mb in minibatches:
                if self.objective.trains_on_rollout:
                    out = self._forward(self.policy, mb, self.value_head is not None, group)
                    loss, metrics = self.objective.loss(out, mb, beta)
                else:   # its own data (DPO's rankings); the rollout is only watched
                    out, (loss, metrics) = None, self.objective.data_loss(self, beta)
                # An update already made this step means the weights are no longer step N-1's.
                intact = count == 0
                bad = nonfinite(loss.detach())
                if bad:
                    raise Diverged(self.step_index, f"the loss is {bad}", params_intact=intact)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                # With no clipping asked for, max_norm=inf measures the norm and scales nothing.
                norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm or math.inf)
                bad = nonfinite(norm)
                if bad:
                    raise Diverged(self.step_index, f"the gradient norm is {bad}",
                                   params_intact=intact)
                if cfg.max_grad_norm > 0:
                    metrics["policy/grad_norm"] = norm
                self.optimizer.step()
                if entropy_first is None and out is not None:
                    entropy_first = float(masked_mean(out.entropy.detach(), mb.mask))
                metrics["loss/total"] = loss.detach()
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
        check_params(self.step_index, self.params)
        out = {k: v / count for k, v in sums.items()}
        if entropy_first is not None:
            out["policy/entropy"] = entropy_first
        return out

    # --- its state, for a resume (core.store.train_state writes and reads it)
    def state_dict(self) -> dict:
        """Everything later steps depend on, as tensors and JSON-able values: the weights,
        Adam's moments, every generator, β's controller, the objective's and the learned
        reward's state, and the rounds so far."""
        source = self.reward_source
        model = getattr(source, "model", None)
        feedback_rng = self._feedback_rng()
        return {
            "step": self.step_index,
            "config": self.cfg.to_dict(),
            "time_s": time.perf_counter() - self._t0,
            "policy": self.policy.state_dict(),
            "value_head": None if self.value_head is None else self.value_head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": self.rng.bit_generator.state,
            "feedback_rng": None if feedback_rng is None else feedback_rng.bit_generator.state,
            "controller": plain_state(self.controller),
            "objective": self.objective.state(),
            "reward": {"model": None if model is None else model.state_dict(),
                       "metrics": source.metrics,
                       "rankings": [] if model is None else
                       [{**r.to_json(), "true": list(r.true)} for r in source.rankings],
                       "gpt_config": None if model is None else model.trunk.config.to_dict()},
            "round_out": self.rounds.state_dict()[0],
            "rounds": self.rounds.state_dict()[1],
        }

    def load_state_dict(self, state: dict) -> None:
        """Carry on from `state_dict()`'s values (the learned reward is restored at set-up)."""
        self.policy.load_state_dict(state["policy"], strict=True)
        if self.value_head is not None:
            self.value_head.load_state_dict(state["value_head"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        load_plain(self.controller, state["controller"])
        self.objective.load_state(state["objective"])
        self.rng.bit_generator.state = state["numpy_rng"]
        if state.get("feedback_rng") and self._feedback_rng() is not None:
            self._feedback_rng().bit_generator.state = state["feedback_rng"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.rounds.load_state_dict(state["round_out"], state["rounds"])
        self.step_index = int(state["step"])
        self._t0 = time.perf_counter() - float(state["time_s"])

    def _feedback_rng(self):
        """The simulated annotator's own generator for feedback rounds, when it has one."""
        rng = getattr(getattr(self.feedback, "annotator", None), "rng", None)
        return rng if rng is not None and rng is not self.rng else None

    def elapsed(self) -> float:
        """Seconds of training so far, a resume's earlier ones included."""
        return time.perf_counter() - self._t0

    # --- persistence
    def save_policy(self, path) -> None:
        from core.lm.checkpoints import save_checkpoint

        save_checkpoint(path, self.policy, {"step": self.step_index, "config": self.cfg.to_dict(),
                                            "base": self.base_meta})


def _adam(params, lr: float) -> torch.optim.Adam:
    """Adam as one fused kernel for every parameter (0.8 ms a step against 2.8 for the foreach
    one on CPU); torch before 2.4 has no fused CPU kernel and refuses it."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=lr)

