"""Run a sweep's trials on Ray Tune, and record every one of them in the run store.

Ray Tune schedules (its local mode by default, a cluster given `address`); nothing here is a
scheduler. Each trial is `core.sweeps.trial.run_trial`, a function trainable that runs an ordinary
`Trainer`.

One writer. A trial never opens the data folder: on a cluster it cannot reach it. It reports
each step through Ray (`tune.report`): the metrics, samples and events, and at its checkpoint
steps the policy and the resume state as bytes. A Tune callback in the driver (`_Recorder`)
writes them into the store, exactly as `core.store.session.train_and_record` writes a local run: one
transaction per step, the checkpoint files in `runs/<id>/`, a final status. So a trial is a
run like any other (`runs`, `metrics`, Resume, Fork), tagged with the sweep's id, its config's
label and its seed. The driver holds each trial's run lock, so if the driver dies every trial
reads `interrupted`, and `sweep --resume` carries each on from its last checkpoint.

Stop: `request_stop` (Ctrl-C, SIGTERM, the window) sets a flag that a small named actor serves
to the trials; each finishes its step, sends its checkpoint, and ends `stopped`. Trials not yet
started never start. A trial that raises is recorded `failed` with its error; the others go on.
How this scales, and where it stops: docs/experiments.md.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import RunConfig
from core.store.runs import RunStore
from core.sweeps.report import Series
from core.sweeps.spec import SweepSpec
from core.sweeps.trial import STOP_FLAG, run_trial

log = logging.getLogger(__name__)

# Tune's own loggers (CSV, JSON, TensorBoard) would write every result a second time, and its
# SIGINT handler would stop trials mid-step: the store and `request_stop` do both jobs here.
_RAY_ENV = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_DISABLE_SIGINT_HANDLER": "1",
            "RAY_AIR_NEW_OUTPUT": "0", "RAY_DEDUP_LOGS": "0"}


def trial_key(label: str, seed: int) -> str:
    return f"{label}|{seed}"


@dataclass(frozen=True)
class TrialView:
    """One trial as the progress display sees it (immutable: it crosses threads)."""
    label: str
    seed: int
    state: str            # pending, running, finished, stopped, failed, diverged, skipped
    step: int = 0         # steps done
    steps: int = 0
    run_id: str | None = None
    phase: str = ""       # set-up work before the first step (rankings, reward model)
    value: float = math.nan   # the spec's metric at the last step


@dataclass(frozen=True)
class SweepProgress:
    sweep_id: str
    trials: tuple[TrialView, ...]
    elapsed: float
    eta: float

    def count(self, *states: str) -> int:
        return sum(t.state in states for t in self.trials)

    def line(self) -> str:
        """The sweep's one line: trials done, running, failed, and the ETA."""
        eta = (time.strftime("%M:%S", time.gmtime(self.eta)) if math.isfinite(self.eta)
               else "--:--")
        failed = self.count("failed", "diverged")
        return (f"sweep {self.sweep_id}: {self.count('finished')}/{len(self.trials)} done, "
                f"{self.count('running')} running, {failed} failed"
                + (f", {self.count('stopped')} stopped" if self.count("stopped") else "")
                + f"  ETA {eta}")


@dataclass
class _Planned:
    label: str
    seed: int
    cfg: RunConfig
    run_id: str | None = None       # an existing run to carry on (resume)
    from_step: int = 0
    state: bytes | None = None      # its resume state
    view: TrialView = field(init=False)

    def __post_init__(self):
        self.view = TrialView(self.label, self.seed, "pending", self.from_step, self.cfg.steps,
                              self.run_id)


class SweepRunner:
    """Plan, run and record one sweep (new, or `resume` an existing one by id). Call `run()`
    from the thread that opened `store`; `request_stop` from anywhere."""

    def __init__(self, store: RunStore, spec: SweepSpec | None = None, *,
                 resume: str | None = None, max_concurrent: int = 0, address: str | None = None,
                 cpus: int | None = None,
                 on_progress: Callable[[SweepProgress], None] | None = None):
        if (spec is None) == (resume is None):
            raise ValueError("give a sweep spec or the id of a sweep to resume")
        self.store, self.address, self.on_progress = store, address, on_progress
        if resume is not None:
            info = store.get_sweep(resume)
            if info.status == "running":
                raise ValueError(f"sweep {resume} is still running; stop it before resuming it")
            spec = SweepSpec.from_json(info.spec)
        spec.check()
        self.spec, self.sweep_id = spec, resume
        if max_concurrent < 0:
            raise ValueError(f"--max-concurrent must be >= 0 (0 = as many as the CPUs allow), "
                             f"got {max_concurrent}")
        self.cpus = max(1, int(cpus or os.cpu_count() or 1))   # a cluster's: once Ray is up
        self.max_concurrent = max_concurrent
        self.plan = self._plan()
        self._stop = threading.Event()
        self._t0 = time.perf_counter()

    # --- planning
    def _plan(self) -> dict[str, _Planned]:
        from core.store.train_state import plan_resume

        done_before = {}
        if self.sweep_id is not None:
            done_before = {(t.label, t.seed): t.run for t in self.store.trials(self.sweep_id)}
        plan = {}
        for label, seed in self.spec.trials():
            cfg = self.spec.config(label, seed)
            item = _Planned(label, seed, cfg)
            run = done_before.get((label, seed))
            if run is not None and run.steps_done >= cfg.steps:   # finished (or stopped late)
                item.run_id, item.from_step = run.id, run.steps_done
                item.view = TrialView(label, seed, "finished", run.steps_done, cfg.steps, run.id)
            elif run is not None:
                resumed = plan_resume(self.store, run.id, cfg.steps)
                item.run_id, item.from_step, item.cfg = run.id, resumed.step, resumed.cfg
                item.state = resumed.state.read_bytes() if resumed.state else None
                item.view = TrialView(label, seed, "pending", resumed.step, cfg.steps, run.id)
            plan[trial_key(label, seed)] = item
        return plan

    def request_stop(self, reason: str = "stopped") -> None:
        """Every running trial stops after its step, saved; trials not started never start."""
        if not self._stop.is_set():
            log.info("sweep %s: stopping every trial after its step (%s)", self.sweep_id, reason)
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # --- running
    def run(self) -> str:
        """Run the trials still to do; returns the sweep's status: finished, stopped, or failed
        (some trial failed or diverged; the others ran to the end)."""
        if self.sweep_id is None:
            self.sweep_id = self.store.create_sweep(self.spec.name, self.spec.to_json())
        else:
            self.store.hold_sweep(self.sweep_id)
            self.store.finish_sweep(self.sweep_id, "running")
        todo = [k for k, p in self.plan.items() if p.view.state == "pending"]
        for item in self.plan.values():   # every step ran, though its status says otherwise
            if item.view.state == "finished" and item.run_id is not None and \
                    self.store.get_run(item.run_id).status != "finished":
                self.store.finish_run(item.run_id, "finished")
        status = "stopped" if self._stop.is_set() else "finished"
        try:
            if todo and not self._stop.is_set():
                self._tune(todo)
            for item in self.plan.values():   # what Tune never started, or lost
                if item.view.state in ("pending", "running") and item.run_id is not None:
                    self._finish(item, "stopped" if self._stop.is_set() else "failed",
                                 "the sweep ended before this trial did")
            states = {p.view.state for p in self.plan.values()}
            status = ("stopped" if self._stop.is_set() or "stopped" in states else
                      "failed" if states & {"failed", "diverged"} else "finished")
        except KeyboardInterrupt:   # a second Ctrl-C: abort now; finished steps are kept
            for item in self.plan.values():
                if item.view.state == "running":
                    self._finish(item, "stopped", "aborted by a second Ctrl-C")
            self.store.finish_sweep(self.sweep_id, "stopped")
            raise
        except BaseException:
            self.store.finish_sweep(self.sweep_id, "failed")
            raise
        self.store.finish_sweep(self.sweep_id, status)
        self._emit()
        return status

    def _tune(self, todo: list[str]) -> None:
        for k, v in _RAY_ENV.items():
            os.environ.setdefault(k, v)
        import ray
        from ray import tune

        logging.getLogger("ray").setLevel(logging.ERROR)
        logging.getLogger("ray.tune").setLevel(logging.ERROR)
        started_here = not ray.is_initialized()
        if started_here:
            kwargs = dict(include_dashboard=False, log_to_driver=False,
                          configure_logging=False)
            # Ray's init installs its own SIGTERM handler (it exits at once); the caller's
            # handlers, which stop every trial after its step, are put back
            main = threading.current_thread() is threading.main_thread()
            saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} \
                if main else {}
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.cpus, **kwargs)
            for sig, handler in saved.items():
                if handler is not None:
                    signal.signal(sig, handler)
        # each trial gets its share of the CPUs (the cluster's, with an address), as torch
        # threads and as Ray's CPU resource
        total = max(1, int(ray.cluster_resources().get("CPU", self.cpus)))
        concurrent = self.max_concurrent or total
        per_trial = max(1, total // min(concurrent, total))
        for k in todo:
            if self.plan[k].cfg.threads == 0:
                self.plan[k].cfg = self.plan[k].cfg.with_changes(threads=per_trial)
        control = STOP_FLAG.options(name=f"rlhfx-{self.sweep_id}", lifetime=None).remote()
        blobs = {k: {"state": self.plan[k].state} for k in todo if self.plan[k].state}
        param = [{"key": k, "cfg": self.plan[k].cfg.to_dict(), "from_step": self.plan[k].from_step,
                  "control": f"rlhfx-{self.sweep_id}"} for k in todo]
        trainable = tune.with_resources(tune.with_parameters(run_trial, blobs=blobs),
                                        {"cpu": per_trial})
        with tempfile.TemporaryDirectory(prefix="rlhfx-tune-") as scratch:
            tuner = tune.Tuner(
                trainable, param_space={"trial": tune.grid_search(param)},
                tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True),
                run_config=tune.RunConfig(
                    name=self.sweep_id, storage_path=scratch, verbose=0,
                    callbacks=[_Recorder(self, control)],
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False)))
            try:
                tuner.fit()
            finally:
                ray.kill(control)
                if started_here:
                    ray.shutdown()

    # --- what the recorder does with each report (driver thread)
    def _started(self, key: str) -> None:
        item = self.plan[key]
        if item.run_id is None:
            item.run_id = self.store.create_run(item.cfg.to_dict(), item.cfg.task, item.cfg.algo,
                                                item.cfg.reward_source,
                                                # the label first: a list elides the middle
                                                name=f"{item.label} · seed {item.seed} "
                                                     f"[{self.spec.name}]")
            self.store.tag_run(self.sweep_id, item.run_id, item.label, item.seed)
        else:
            self.store.reopen_run(item.run_id, item.from_step, item.cfg.to_dict())
        self._view(item, state="running", run_id=item.run_id)

    def _record(self, key: str, payload: dict) -> None:
        item = self.plan[key]
        kind = payload["kind"]
        if kind == "start":
            self._started(key)
        elif kind == "phase":
            self._view(item, phase=f"{payload['name']} {payload['done']}/{payload['total']}")
        elif kind == "step":
            step = payload["step"]
            self.store.log_step(item.run_id, step, payload["metrics"], payload["samples"])
            for event in payload["events"]:
                self.store.log_event(item.run_id, step, event["kind"], event)
            self._save(item, payload.get("checkpoint"))
            self._view(item, step=step + 1, phase="",
                       value=float(payload["metrics"].get(self.spec.metric, math.nan)))
        elif kind == "end":
            self._save(item, payload.get("checkpoint"))
            if payload["status"] == "diverged":
                self.store.log_event(item.run_id, payload["step"], "diverged",
                                     {"kind": "diverged", "step": payload["step"],
                                      "what": payload.get("what")})
            self._finish(item, payload["status"], payload.get("error"))
        self._emit()

    def _save(self, item: _Planned, checkpoint: dict | None) -> None:
        if not checkpoint:
            return
        from core.storage import atomic_write
        from core.store.train_state import state_path

        step = checkpoint["step"]
        if any(s == step for s, _ in self.store.checkpoints(item.run_id)):
            return
        path = self.store.checkpoint_path(item.run_id, step)
        atomic_write(path, lambda tmp: tmp.write_bytes(checkpoint["policy"]))
        atomic_write(state_path(path), lambda tmp: tmp.write_bytes(checkpoint["state"]))
        self.store.record_checkpoint(item.run_id, step, path)

    def _finish(self, item: _Planned, status: str, error: str | None = None) -> None:
        if item.view.state in ("finished", "stopped", "failed", "diverged"):
            return
        if item.run_id is not None:
            self.store.finish_run(item.run_id, status, error=error)
        self._view(item, state=status, phase="")

    def _failed(self, key: str, error: str) -> None:
        item = self.plan[key]
        if item.run_id is None:   # it failed before it could say it had started
            self._started(key)
        self._finish(item, "failed", error)
        self._emit()

    def _view(self, item: _Planned, **changes) -> None:
        from dataclasses import replace

        item.view = replace(item.view, **changes)

    def progress(self) -> SweepProgress:
        views = tuple(p.view for p in self.plan.values())
        elapsed = time.perf_counter() - self._t0
        done = sum(v.step - p.from_step for v, p in zip(views, self.plan.values(), strict=True))
        left = sum(v.steps - v.step for v in views if v.state in ("pending", "running"))
        rate = done / elapsed if elapsed > 0 else 0.0
        return SweepProgress(self.sweep_id or "", views, elapsed,
                             left / rate if rate > 0 else math.inf)

    def _emit(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress())


def _recorder_class():
    from ray import tune

    class Recorder(tune.Callback):
        """Tune calls these in the driver, in its control loop: the one writer of the store."""

        def __init__(self, runner: SweepRunner, control):
            self.runner, self.control, self.stopped = runner, control, False

        def __getstate__(self):
            # Tune pickles its callbacks into its own experiment folder (for Tune's resume,
            # which we do not use: `sweep --resume` reads the store). The store's connection
            # cannot be pickled and must not leave this process.
            return {"stopped": self.stopped}

        def on_step_begin(self, iteration, trials, **info):
            if self.runner.stop_requested and not self.stopped:
                self.stopped = True
                self.control.stop.remote()

        def on_trial_result(self, iteration, trials, trial, result, **info):
            payload = result.get("rlhfx")
            if payload:
                self.runner._record(trial.config["trial"]["key"], payload)

        def on_trial_error(self, iteration, trials, trial, **info):
            self.runner._failed(trial.config["trial"]["key"], _error_text(trial))

    return Recorder


def _Recorder(runner: SweepRunner, control):   # noqa: N802  (a class, made when Ray is there)
    return _recorder_class()(runner, control)


def _error_text(trial) -> str:
    """The trial's traceback when Tune kept it, else its error's one line."""
    path = getattr(trial, "error_file", None) or getattr(getattr(trial, "run_metadata", None),
                                                         "error_filename", None)
    try:
        if path and Path(path).is_file():
            return Path(path).read_text(errors="replace")
    except OSError:
        pass
    return str(getattr(trial, "error_msg", None) or "the trial's process failed")


# --- reading a sweep back (the report and the window)

def trial_series(store, sweep_id: str, metric: str, x: str = "step") -> list[Series]:
    """Every trial's `metric` as a Series, in the spec's order of configs; x = sqrt_kl puts
    sqrt(kl/mean) on the x axis."""
    order = {c[0]: i for i, c in enumerate(store.get_sweep(sweep_id).spec.get("configs", []))}
    out = []
    for t in sorted(store.trials(sweep_id), key=lambda t: (order.get(t.label, len(order)),
                                                          t.seed)):
        steps, values = store.metric_series(t.run.id, metric)
        if x == "sqrt_kl":
            kl_steps, kl = store.metric_series(t.run.id, "kl/mean")
            at = dict(zip(kl_steps.tolist(), kl.tolist(), strict=True))
            xs = np.sqrt(np.maximum([at.get(s, np.nan) for s in steps.tolist()], 0.0))
            out.append(Series(t.label, t.seed, np.asarray(xs, float), values))
        else:
            out.append(Series(t.label, t.seed, steps, values))
    return out
