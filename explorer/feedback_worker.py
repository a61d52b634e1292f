"""The Rank tab's torch work on its own QThread: sampling groups to rank and training reward
models, so the window never waits on torch.

Jobs are frozen requests put on a queue and done one at a time; results come back as immutable
values through signals (queued to the GUI thread). The thread keeps the models it has loaded (base
models, checkpoints, the current reward model) so the next group samples at once.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from PySide6.QtCore import QThread, Signal

log = logging.getLogger(__name__)

BASE, RUNNING = "base", "running"


@dataclass(frozen=True)
class SampleRequest:
    task: str
    prompts: tuple[str, ...]      # one group per prompt
    k: int
    policy: str                   # BASE, RUNNING, or a checkpoint path
    temperature: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class TrainRequest:
    task: str
    loss: str
    sources: tuple[str, ...]
    name: str | None
    steps: int = 150
    seed: int = 0


@dataclass(frozen=True)
class UseModel:
    """Score previews with this saved reward model from now on ('' = none)."""
    name: str


class FeedbackWorker(QThread):
    groupsReady = Signal(object)        # tuple of core.reward_learning.feedback.Group
    trainProgress = Signal(int, int, object)   # done, total, metrics dict (a fresh copy)
    trainFinished = Signal(object)      # meta dict of the trained model
    failed = Signal(str, str)           # what failed, the one-line reason

    def __init__(self, data_dir, snapshot=None, parent=None, busy=None):
        """snapshot() -> a Future of (policy copy, step) from the running trainer, or None;
        busy() -> whether a run is going."""
        super().__init__(parent)
        self.data_dir, self.snapshot = data_dir, snapshot
        self.snapshot_busy = busy or (lambda: False)
        self._jobs: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._closing = threading.Event()
        self._models: dict = {}
        self._rm = None
        self._rm_task: str | None = None

    # --- GUI thread
    def submit(self, job) -> None:
        self._jobs.put(job)
        if not self.isRunning():
            self.start()

    def cancel_training(self) -> None:
        self._cancel.set()

    def shutdown(self) -> None:
        self._cancel.set()
        self._closing.set()
        self._jobs.put(None)
        self.wait(30_000)

    # --- worker thread
    def run(self) -> None:  # noqa: D401 (QThread entry point)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._do(job)
            except ValueError as exc:          # bad input: one line for the status bar
                self.failed.emit(type(job).__name__, str(exc))
            except Exception as exc:           # a bug: logged in full, one line shown
                log.error("feedback job failed:\n%s", traceback.format_exc())
                self.failed.emit(type(job).__name__, f"{type(exc).__name__}: {exc}")

    def _do(self, job) -> None:
        if isinstance(job, SampleRequest):
            self.groupsReady.emit(tuple(self._sample(job)))
        elif isinstance(job, TrainRequest):
            # Stop applies to the training it was pressed for, whatever was queued after it.
            self._cancel.clear()
            self._train(job)
        elif isinstance(job, UseModel):
            self._use(job.name)

    def _policy(self, job: SampleRequest):
        from core.lm.checkpoints import load_checkpoint
        from core.rl.trainer import default_checkpoint

        if job.policy == RUNNING:
            future = self.snapshot() if self.snapshot else None
            if future is None:
                raise ValueError("no run is going; sample from the base model or a checkpoint")
            try:
                model, step = self._wait_for(future)
            except (CancelledError, FutureTimeout) as exc:
                raise ValueError("the run ended before it could lend its policy; sample from "
                                 "the base model or its last checkpoint") from exc
            return model, f"running policy at step {step}"
        path = default_checkpoint(job.task) if job.policy == BASE else job.policy
        if path not in self._models:
            model, _ = load_checkpoint(path)
            self._models[path] = model.eval().requires_grad_(False)
        return self._models[path], "base" if job.policy == BASE else str(path)

    def _wait_for(self, future, seconds: float = 60.0):
        """The future's result, giving up early when the worker is shut down."""
        for _ in range(int(seconds / 0.2)):
            if self._closing.is_set():
                future.cancel()
            try:
                return future.result(timeout=0.2)
            except FutureTimeout:
                continue
        raise FutureTimeout()

    def _sample(self, job: SampleRequest):
        import torch

        from core.reward_learning.feedback import sample_groups
        from core.tasks import get_task

        task = get_task(job.task)
        model, label = self._policy(job)
        rm = self._rm if self._rm_task == job.task else None
        generator = torch.Generator().manual_seed(job.seed)
        return sample_groups(model, task, list(job.prompts), job.k, task.max_new_tokens,
                             job.temperature, generator, label, rm)

    def _train(self, job: TrainRequest) -> None:
        import torch

        from core.lm.threads import cpu_cores

        # A person waits on this: with no run going, use every core (100 rankings: 15 s on 2
        # threads, 26 s on 1, benchmarks/README.md). Beside a run, one: the run's passes take
        # every core already, and a second team of busy-waiting OpenMP threads on the same
        # cores would stall both.
        threads = torch.get_num_threads()
        torch.set_num_threads(1 if self.snapshot_busy() else cpu_cores())
        try:
            self._train_now(job)
        finally:
            torch.set_num_threads(threads)

    def _train_now(self, job: TrainRequest) -> None:
        from core.reward_learning.feedback import train_from_store

        def on_step(done, total, metrics):
            self.trainProgress.emit(done, total, dict(metrics))

        model, metrics, meta = train_from_store(
            self.data_dir, job.task, job.loss, job.sources, job.name, job.steps, seed=job.seed,
            on_step=on_step, stop=self._cancel.is_set)
        self._rm, self._rm_task = model, job.task
        self.trainFinished.emit({**meta, "name": job.name, "cancelled": self._cancel.is_set()})

    def _use(self, name: str) -> None:
        from core.reward_learning.reward_model_store import load_reward_model

        if not name:
            self._rm = self._rm_task = None
            return
        self._rm, meta = load_reward_model(self.data_dir, name)
        self._rm_task = meta.get("task")
