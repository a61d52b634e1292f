"""The ranking panel: a person orders K sampled responses, by keyboard first, or by drag.

Keys (with the list focused): 1..K set the focused response's rank (equal numbers tie) and move
to the next one; Up/Down or Tab/Shift+Tab move the focus; Enter submits; Backspace skips;
N marks the group "not rankable". Dragging a response by its handle reorders the list and ranks
it by position (1 at the top).

A ranking is acknowledged ("Saved #N") only after the rankings store committed it, so what the
panel says is saved survives a crash. The panel keeps only what is on screen: the session (the
group shown, the ranks typed so far, the groups waiting, a round; a Qt-free
`core.reward_learning.ranking_session.RankingSession`) and the widgets that show it; the store
owns every ranking.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.reward_learning.ranking_session import LOW_WATER, RankingSession
from core.rewards import SCHEMES, rank_to_reward
from explorer.feedback_worker import BASE, RUNNING, SampleRequest

SCHEME_LABELS = {"fixed": "fixed (+1 / 0 / −1)", "normalized": "normalized (K−a)/(K−1)",
                 "log": "−ln a", "exp": "e^(−λa)"}
HANDLE = "⠿"


def preview_rewards(ranks: list[int | None], scheme: str, lam: float) -> list[float | None]:
    """Each ranked response's reward under `scheme` (unranked: None). Unranked responses count as
    tied last meanwhile, the place they would take if the person stopped here."""
    k = len(ranks)
    if not any(r is not None for r in ranks):
        return [None] * k
    filled = [r if r is not None else k for r in ranks]
    rewards = rank_to_reward([filled], scheme, lam)[0].tolist()
    return [None if r is None else v for r, v in zip(ranks, rewards, strict=True)]


class RankingPanel(QWidget):
    sampleRequested = Signal(object)   # SampleRequest, for the feedback worker
    # a round is done: a tuple of core.reward_learning.reward_model.Ranking
    roundFinished = Signal(object)
    saved = Signal(int)                # id of a ranking the store committed

    def __init__(self, parent=None):
        super().__init__(parent)
        self.store = None
        self.task = "sentiment"
        self.prompts: list[str] = []
        self.session = RankingSession()   # what is shown and waiting; the widgets show it
        self._seed = 0

        self.prompt = QComboBox(objectName="rankPrompt", editable=True)
        self.prompt.setToolTip("A task prompt, or type your own")
        self.prompt.setInsertPolicy(QComboBox.NoInsert)
        self.random_prompt = QPushButton("Random", objectName="rankRandom")
        self.random_prompt.setToolTip("Sample groups for random task prompts")
        self.k = QSpinBox(objectName="rankK", minimum=2, maximum=8, value=4, prefix="K = ")
        self.k.setToolTip("Responses per group")
        self.policy = QComboBox(objectName="rankPolicy")
        self.policy.addItem("base model", BASE)
        self.policy.addItem("running policy", RUNNING)
        self.sample_button = QPushButton("Sample", objectName="rankSample")
        self.sample_button.setToolTip("Sample K responses to the prompt (Ctrl+R)")
        self.banner = QLabel(objectName="rankBanner", wordWrap=True)
        self.banner.setVisible(False)
        self.banner.setStyleSheet("QLabel { background: #fff4d6; color: #5a4500; "
                                  "padding: 6px; border-radius: 4px; }")
        self.prompt_label = QLabel(objectName="rankPromptShown", wordWrap=True)
        font = self.prompt_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.prompt_label.setFont(font)

        self.list = QListWidget(objectName="rankList")
        self.list.setDragDropMode(QAbstractItemView.InternalMove)
        self.list.setDefaultDropAction(Qt.MoveAction)
        self.list.setWordWrap(True)
        self.list.setSpacing(3)
        self.list.setAlternatingRowColors(True)
        size = self.list.font().pointSize()
        self.list.setFont(QFont(self.list.font().family(), round(size * 1.2)))
        self.list.installEventFilter(self)
        self.list.model().rowsMoved.connect(self._dragged)

        self.scheme = QComboBox(objectName="rankScheme")
        for s in SCHEMES:
            self.scheme.addItem(SCHEME_LABELS[s], s)
        self.scheme.setCurrentIndex(SCHEMES.index("normalized"))
        self.scheme.setToolTip("How ranks become rewards in the preview (direct assignment)")
        self.lam = QSlider(Qt.Horizontal, objectName="rankLambda", minimum=1, maximum=50,
                           value=10)
        self.lam.setToolTip("λ of e^(−λa)")
        self.lam_label = QLabel(objectName="rankLambdaValue")
        self.show_true = QCheckBox("Show true reward", objectName="rankShowTrue")
        self.show_true.setToolTip("The task's hidden reward. Off by default, so it cannot bias "
                                  "your ranking")
        self.submit_button = QPushButton("Submit  ⏎", objectName="rankSubmit")
        self.skip_button = QPushButton("Skip  ⌫", objectName="rankSkip")
        self.unrankable_button = QPushButton("Not rankable  (N)", objectName="rankUnrankable")
        self.status = QLabel(objectName="rankStatus", wordWrap=True)
        self.count = QLabel(objectName="rankCount")

        for combo, chars in ((self.prompt, 14), (self.policy, 12)):
            # sized to a few characters, not to the longest item (a checkpoint's label)
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(chars)
        top = QHBoxLayout()
        top.addWidget(self.prompt, 1)
        for w in (self.random_prompt, self.k, self.policy, self.sample_button):
            top.addWidget(w)
        knobs = QHBoxLayout()
        knobs.addWidget(QLabel("Preview reward:"))
        knobs.addWidget(self.scheme)
        knobs.addWidget(QLabel("λ"))
        knobs.addWidget(self.lam, 1)
        knobs.addWidget(self.lam_label)
        buttons = QHBoxLayout()
        for w in (self.submit_button, self.skip_button, self.unrankable_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        buttons.addWidget(self.show_true)
        self.count.setWordWrap(True)
        help_line = QLabel("Keys: 1–K rank the focused response (equal numbers tie) · ↑↓ / Tab "
                           "move · Enter submit · Backspace skip · N not rankable · or drag ⠿")
        help_line.setObjectName("rankHelp")
        help_line.setWordWrap(True)
        help_line.setStyleSheet("color: palette(mid);")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.prompt_label)
        layout.addWidget(self.list, 1)
        layout.addWidget(help_line)
        layout.addLayout(knobs)
        layout.addLayout(buttons)
        status = QHBoxLayout()
        status.addWidget(self.status, 1)
        status.addWidget(self.count)
        layout.addLayout(status)

        # A press while a group is showing brings the new group forward (the shown one waits
        # behind it): pressing and seeing nothing happen read as broken.
        self.sample_button.clicked.connect(lambda: self.sample_now(replace=True))
        self.random_prompt.clicked.connect(lambda: self.sample_now(random=True, replace=True))
        self.submit_button.clicked.connect(self.submit)
        self.skip_button.clicked.connect(self.skip)
        self.unrankable_button.clicked.connect(self.not_rankable)
        self.scheme.currentIndexChanged.connect(self._render)
        self.lam.valueChanged.connect(self._render)
        self.show_true.toggled.connect(self._render)
        self._render()

    # --- set-up from the owner
    def set_store(self, store) -> None:
        self.store = store
        self.show_count()

    def set_task(self, task: str, prompts: list[str]) -> None:
        if task != self.task:
            self.session.clear_queue()
            if self.session.round is None:
                self._show(None)
        self.task, self.prompts = task, list(prompts)
        typed = self.prompt.currentText()
        self.prompt.blockSignals(True)
        self.prompt.clear()
        self.prompt.addItems(self.prompts)
        self.prompt.setEditText(typed if typed and task == self.task else "")
        self.prompt.blockSignals(False)
        self.show_count()

    def set_checkpoints(self, items: list[tuple[str, str]]) -> None:
        """(label, path) of saved checkpoints, offered beside the base and running policy."""
        current = self.policy.currentData()
        while self.policy.count() > 2:
            self.policy.removeItem(2)
        for label, path in items:
            self.policy.addItem(label, path)
        index = self.policy.findData(current)
        self.policy.setCurrentIndex(max(0, index))

    # --- sampling
    def sample_now(self, random: bool = False, count: int = 1, replace: bool = False) -> None:
        """Ask for groups: of the typed prompt, or (random / no prompt) of random task prompts.
        replace: show the first of them as soon as it comes, even over a group on screen."""
        import numpy as np

        session = self.session
        session.replace = replace and session.round is None
        text = self.prompt.currentText().strip()
        session.random = random or not text
        if session.random:
            rng = np.random.default_rng(self._seed + 10_000)
            prompts = tuple(str(p) for p in rng.choice(self.prompts, size=count)) \
                if self.prompts else ()
        else:
            prompts = (text,) * count
        if not prompts:
            self.status.setText("No prompts for this task; type one.")
            return
        self._seed += 1
        session.waiting = True
        self.status.setText("Sampling…")
        self.sampleRequested.emit(SampleRequest(self.task, prompts, self.k.value(),
                                                self.policy.currentData(), seed=self._seed))

    def sampling_failed(self, text: str) -> None:
        """The feedback worker could not sample: say why, and take requests again."""
        self.session.waiting = False
        self.status.setText(f"Could not sample: {text}")

    def add_groups(self, groups) -> None:
        """Groups from the feedback worker: shown at once if nothing is, else queued."""
        shown = self.session.group
        self.session.add_groups(groups, self.task)
        if self.session.round is not None:   # a round owns the panel; extra samples wait
            return
        if self.session.group is not shown:
            self._show(self.session.group)
        if self.status.text() == "Sampling…":
            self.status.setText("")
        if self.session.group is None:
            self._next()

    def model_changed(self) -> None:
        """A reward model was trained or chosen: the groups sampled ahead carry the old one's
        scores, so they go and fresh ones (scored by the new model) are sampled."""
        if self.session.round is not None:
            return
        had = self.session.clear_queue()
        if had and self.session.random:
            self.sample_now(random=True, count=min(had, LOW_WATER))

    def offer_first_group(self) -> None:
        """The tab's first showing: a group to rank at once, not an empty list."""
        session = self.session
        if session.group is None and not session.queue and not session.waiting and self.prompts \
                and self.isEnabled():
            self.sample_now(random=True)

    def start_round(self, groups, step: int, reason: str = "") -> None:
        """Iterated RLHF: rank these groups from the current policy; `roundFinished` when done.
        reason: why the round asks, said first on the banner."""
        self.session.start_round(groups, step, reason)
        self._show_banner()
        self._show(None)
        self._next()

    def cancel_round(self) -> None:
        """The run ended or stopped mid-round: its groups leave the panel with the banner (they
        were the stopped policy's; nobody waits for them now)."""
        if self.session.cancel_round():
            self.banner.setVisible(False)
            self._round_owns_panel(False)
            self._show(None)
            self._next()

    # --- the person's actions
    def set_rank(self, row: int, rank: int) -> None:
        if not self.session.set_rank(row, rank):
            return
        self._render()
        if row + 1 < self.list.count():
            self.list.setCurrentRow(row + 1)

    def submit(self) -> bool:
        if self.session.group is None:
            return False
        missing = self.session.missing()
        if missing:
            self.status.setText(f"Rank every response first ({missing} left), or Backspace to "
                                "skip, N if it cannot be ranked.")
            return False
        return self._save(tuple(self.session.ranks))

    def skip(self) -> None:
        if self.session.group is not None:
            self.status.setText("Skipped.")
            self._done(None)

    def not_rankable(self) -> bool:
        return self.session.group is not None and self._save(None)

    # --- internals
    def _save(self, ranks) -> bool:
        from core.reward_learning.reward_model import Ranking

        g = self.session.group
        try:
            rid = self.store.add(g.task, g.prompt, g.responses, ranks, "person", g.policy,
                                 true=g.true)
        except Exception as exc:   # nothing was stored: say so, keep the group on screen
            self.status.setText(f"Not saved: {exc}")
            return False
        self.status.setText(f"Saved #{rid}" + ("" if ranks else " as not rankable") + ".")
        self.saved.emit(rid)
        self.show_count()
        self._done(Ranking(g.prompt, g.responses, ranks, g.true) if ranks else None)
        return True

    def _done(self, ranking) -> None:
        in_round = self.session.round is not None
        finished = self.session.done(ranking)
        if finished is not None:
            self.banner.setVisible(False)
            self._round_owns_panel(False)
            self._show(None)
            self.roundFinished.emit(finished)
        elif in_round:
            self._show_banner()
        self._show(None)
        self._next()

    def _next(self) -> None:
        shown = self.session.group
        more = self.session.next()
        if self.session.group is not shown:
            self._show(self.session.group)
        if more:
            self.sample_now(count=LOW_WATER)

    def _show(self, group) -> None:
        session = self.session
        if group is not session.group or group is None:
            session.show(group)
        source = (f"   (the policy at step {session.round_step})"
                  if group and session.round is not None else "")
        self.prompt_label.setText(f"“{group.prompt}” …{source}" if group else
                                  "Press Sample (or Random) to get responses to rank.")
        self._render()
        if group:
            self.list.setFocus()
            self.list.setCurrentRow(0)

    def _show_banner(self) -> None:
        session = self.session
        done = len(session.round or [])
        why = session.round_reason or "a feedback round"
        total = done + session.round_left
        self.banner.setText(
            f"{why[:1].upper()}{why[1:]}: rank {total} groups from the policy at step "
            f"{session.round_step} — {session.round_left} left. The run waits for you. One "
            "response in each group may be the base model's, unmarked: your ranks also measure "
            "the policy's win rate over it.")
        self.banner.setVisible(True)
        self._round_owns_panel(True)

    def _round_owns_panel(self, owns: bool) -> None:
        """During a round the groups are the round's: sampling your own waits until it ends."""
        for widget in (self.random_prompt, self.k, self.policy, self.sample_button,
                       self.prompt):
            widget.setEnabled(not owns)

    def _render(self) -> None:
        lam = self.lam.value() / 10
        self.lam_label.setText(f"{lam:.1f}")
        self.lam.setEnabled(self.scheme.currentData() == "exp")
        current = max(0, self.list.currentRow())
        self.list.blockSignals(True)
        self.list.clear()
        session = self.session
        g = session.group
        if g is not None:
            rewards = preview_rewards(session.ranks, self.scheme.currentData(), lam)
            for i in session.order:
                rank = session.ranks[i]
                badge = f"{rank}" if rank is not None else "–"
                reward = rewards[i]
                facts = ["reward –" if reward is None else f"reward {reward + 0.0:+.2f}"]
                if g.rm_scores:
                    facts.append(f"RM {g.rm_scores[i]:+.2f}")
                if self.show_true.isChecked() and g.true:
                    facts.append(f"true {g.true[i]:+.2f}")
                text = g.responses[i] or "(empty)"
                item = QListWidgetItem(f"{HANDLE}  [{badge}]   {text}\n        "
                                       + "   ·   ".join(facts))
                item.setData(Qt.UserRole, i)
                item.setFlags(item.flags() | Qt.ItemIsDragEnabled)
                self.list.addItem(item)
            self.list.setCurrentRow(min(current, self.list.count() - 1))
        self.list.blockSignals(False)
        for b in (self.submit_button, self.skip_button, self.unrankable_button):
            b.setEnabled(g is not None)

    def _dragged(self, *_args) -> None:
        """A drop reordered the rows: rank by position, 1 at the top."""
        self.session.rank_by_position(
            [self.list.item(r).data(Qt.UserRole) for r in range(self.list.count())])
        self.status.setText("Ranked by position; Enter to submit.")
        self._render()

    def show_count(self) -> None:
        if self.store is None:
            return
        counts = self.store.counts(self.task)
        total = sum(v for k, v in counts.items() if k != "not_rankable")
        parts = [f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items())]
        self.count.setText(f"{total} rankings of {self.task}")
        self.count.setToolTip(", ".join(parts))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
        if obj is self.list and event.type() == QEvent.KeyPress:
            key, row = event.key(), self.list.currentRow()
            if Qt.Key_1 <= key <= Qt.Key_9:
                self.set_rank(row, key - Qt.Key_0)
                return True
            if key in (Qt.Key_Return, Qt.Key_Enter):
                self.submit()
                return True
            if key == Qt.Key_Backspace:
                self.skip()
                return True
            if key == Qt.Key_N:
                self.not_rankable()
                return True
            if key in (Qt.Key_Tab, Qt.Key_Backtab) and self.list.count():
                step = -1 if key == Qt.Key_Backtab or event.modifiers() & Qt.ShiftModifier else 1
                self.list.setCurrentRow((row + step) % self.list.count())
                return True
        return super().eventFilter(obj, event)
