"""The Rank tab: rank sampled responses, browse what was ranked, train a reward model from it.

It owns the rankings store's GUI-thread connection and the feedback worker (the tab's torch work),
and wires the ranking panel, the reward-model box and the rankings browser to them. The running
run lends it its policy (a snapshot at a step boundary) and hands it the groups of
an iterated-RLHF round.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QSplitter, QTabWidget, QVBoxLayout, QWidget

from core.reward_learning.rankings import RankingStore
from core.reward_learning.reward_model_store import list_reward_models
from core.tasks import get_task
from explorer.feedback_worker import FeedbackWorker, UseModel
from explorer.panels.ranking import RankingPanel
from explorer.panels.rankings_browser import RankingsBrowser
from explorer.panels.reward_model_box import RewardModelBox


def task_prompts(task: str, n: int = 40) -> list[str]:
    """A fixed list of the task's own prompts to pick from (sorted, no repeats)."""
    return sorted(set(get_task(task).sample_prompts(n, np.random.default_rng(0))))


class RankTab(QWidget):
    useModelRequested = Signal(str)      # run on this saved reward model
    useDpoRequested = Signal(tuple)      # the next run: DPO on these sources' rankings
    roundDone = Signal(object)           # the person's rankings of a round (for the trainer)

    def __init__(self, data_dir, snapshot=None, busy=None, parent=None):
        super().__init__(parent)
        self.setObjectName("rankTab")
        self.data_dir = data_dir
        try:
            self.store = RankingStore(data_dir)
            problem = None
        except ValueError as exc:   # a damaged rankings.db must not keep the window shut
            self.store, problem = None, str(exc)
        self.worker = FeedbackWorker(data_dir, snapshot, busy=busy)
        self.panel = RankingPanel()
        self.panel.set_store(self.store)
        if problem:
            self.panel.status.setText(f"Rankings cannot be stored: {problem}")
            self.panel.setEnabled(False)
        self.rm_box = RewardModelBox()
        self.browser = RankingsBrowser()
        side = QTabWidget(objectName="rankSideTabs")
        side.addTab(self.rm_box, "Reward model")
        side.addTab(self.browser, "Stored rankings")
        self.side = side
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.panel)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)

        self.panel.sampleRequested.connect(self.worker.submit)
        self.worker.groupsReady.connect(self.panel.add_groups)
        self.worker.failed.connect(self._failed)
        self.rm_box.trainRequested.connect(self.worker.submit)
        self.rm_box.cancelRequested.connect(self.worker.cancel_training)
        self.worker.trainProgress.connect(self.rm_box.show_progress)
        self.worker.trainFinished.connect(self._trained)
        self.rm_box.useRequested.connect(self.useModelRequested)
        self.rm_box.dpoRequested.connect(self.useDpoRequested)
        # the chosen model also scores the previews of the groups sampled from now on
        self.rm_box.useRequested.connect(lambda name: self.worker.submit(UseModel(name)))
        self.rm_box.useRequested.connect(lambda _name: self.panel.model_changed())
        self.panel.saved.connect(lambda _id: self.browser.refresh())
        self.browser.changed.connect(self.panel.show_count)
        self.panel.roundFinished.connect(self.roundDone)
        self.task = None
        self.set_task("sentiment")

    def set_task(self, task: str) -> None:
        if task == self.task:
            return
        self.task = task
        self.panel.set_task(task, task_prompts(task))
        self.rm_box.set_task(task)
        self.browser.set_store(self.store, task)
        models = list_reward_models(self.data_dir, task)
        self.rm_box.set_models(models)
        if models:   # previews show the newest model's score until another is trained or chosen
            self.worker.submit(UseModel(models[0]["name"]))

    def rankings_changed(self) -> None:
        """Rankings came in from elsewhere (an import): the list and the count show them."""
        self.browser.refresh()
        self.panel.show_count()

    def set_checkpoints(self, items: list[tuple[str, str]]) -> None:
        self.panel.set_checkpoints(items)

    def start_round(self, groups, step: int, reason: str = "") -> None:
        self.panel.start_round(groups, step, reason)

    def _trained(self, meta: dict) -> None:
        self.rm_box.finished(meta)
        self.rm_box.set_models(list_reward_models(self.data_dir, self.task))
        # the new model scores the previews of the next groups (the worker keeps it), so the
        # groups sampled ahead under the old one are sampled again
        self.panel.model_changed()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self.panel.offer_first_group()

    def round_result(self, event: dict) -> None:
        """After a round: what the person's ranks said, in the reward-model box."""
        self.rm_box.show_round(event)

    def _failed(self, job: str, text: str) -> None:
        if job == "TrainRequest":
            self.rm_box.failed(text)
        else:
            self.panel.sampling_failed(text)

    def shutdown(self) -> None:
        self.panel.cancel_round()
        self.worker.shutdown()
        if self.store is not None:
            self.store.close()
