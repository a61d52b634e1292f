"""The samples panel: the latest step's completions with their rewards, colour-coded.

Reading the text beside the reward is how a person spots reward hacking (docs/design.md): text
that scores high but reads badly, or a learned reward rising while the true one does not. The
table is a model/view pair, so a refresh at ~10 Hz swaps one list and repaints; no widget is
created per call. The last HISTORY_STEPS steps are kept (plain dicts only) for looking back
with the slider.
"""

from __future__ import annotations

import html
import math
from collections import OrderedDict
from collections.abc import Sequence

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPointF,
    Qt,
)
from PySide6.QtGui import QColor, QFontDatabase, QPalette, QTextCharFormat, QTextLayout
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QStyle,
    QStyledItemDelegate,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.panels.common import empty_stack, mix, readable_on, setup_table

HISTORY_STEPS = 200
EMPTY_TEXT = ("Samples appear here once a run starts — watch them for reward hacking: text that "
              "scores high but reads badly")
# ColorBrewer RdYlGn ends: a diverging pair that stays apart for the common colour-vision
# deficiencies better than pure red/green.
LOW_COLOUR, HIGH_COLOUR = QColor("#d73027"), QColor("#1a9850")
MAX_MIX = 0.65  # the share of the scale colour at either end of the range; the rest is Base
TEXT_LINES = 2  # completions are short; two wrapped lines show them whole in a narrow dock
_Index = QModelIndex | QPersistentModelIndex


def reward_colour(value: float, lo: float, hi: float, base: QColor) -> QColor | None:
    """Red at `lo`, the palette's Base at the middle, green at `hi`; None for NaN."""
    if not math.isfinite(value):
        return None
    mid, half = (lo + hi) / 2, (hi - lo) / 2 or 1.0
    t = max(-1.0, min(1.0, (value - mid) / half))
    return mix(base, HIGH_COLOUR if t >= 0 else LOW_COLOUR, MAX_MIX * abs(t))


def _num(value: float, signed: bool = False) -> str:
    value = round(value, 2) + 0.0  # + 0.0 turns the -0.0 of a tiny negative into "0.00"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _visible(text: str) -> str:
    # A character model's newlines and tabs would break the one-block cell; show them as glyphs.
    return text.replace("\n", "⏎").replace("\t", "⇥")


class SamplesModel(QAbstractTableModel):
    """Rows are sample dicts; columns Reward, [True,] Text. Colours come from the palette given."""

    def __init__(self, palette: QPalette, parent=None) -> None:
        super().__init__(parent)
        self.samples: list[dict] = []
        self.show_true = False
        self.lo, self.hi = 0.0, 1.0
        self.palette = palette

    def columns(self) -> list[str]:
        return ["Reward", "True", "Text"] if self.show_true else ["Reward", "Text"]

    def set_samples(self, samples: list[dict]) -> None:
        if len(samples) == len(self.samples):
            # Same shape (the usual live case): repaint in place, keeping scroll and selection.
            self.samples = samples
            if samples:
                self.dataChanged.emit(self.index(0, 0),
                                      self.index(len(samples) - 1, self.columnCount() - 1))
            return
        self.beginResetModel()
        self.samples = samples
        self.endResetModel()

    def set_layout(self, show_true: bool, lo: float, hi: float) -> None:
        self.beginResetModel()
        self.show_true, self.lo, self.hi = show_true, lo, hi
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.samples)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns())

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.columns()[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return {"Reward": "The reward the policy is optimised for",
                    "True": "The task's hidden true reward: if Reward rises and this does not, "
                            "the policy is hacking the learned reward",
                    "Text": "Prompt (muted) and completion"}[self.columns()[section]]
        return None

    def _value(self, row: int, column: str) -> float:
        sample = self.samples[row]
        raw = sample.get("true_reward" if column == "True" else "reward")
        try:
            return float(raw)
        except (TypeError, ValueError):
            return math.nan

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        column, sample = self.columns()[index.column()], self.samples[index.row()]
        if column == "Text":
            prompt = str(sample.get("prompt") or "")
            completion = str(sample.get("completion") or "")
            if role == Qt.ItemDataRole.DisplayRole:
                return _visible(prompt) + _visible(completion)
            if role == Qt.ItemDataRole.UserRole:
                return len(_visible(prompt))  # where the completion starts, for the delegate
            if role == Qt.ItemDataRole.ToolTipRole:
                return self._tooltip(index.row(), prompt, completion)
            return None
        value = self._value(index.row(), column)
        if role == Qt.ItemDataRole.DisplayRole:
            if not math.isfinite(value):
                return "—"
            return _num(value, signed=self.lo < 0)
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            base = self.palette.color(QPalette.ColorRole.Base)
            colour = reward_colour(value, self.lo, self.hi, base)
            if colour is None:
                return None
            return colour if role == Qt.ItemDataRole.BackgroundRole else readable_on(colour)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(index.row(), str(sample.get("prompt") or ""),
                                 str(sample.get("completion") or ""))
        return None

    def _tooltip(self, row: int, prompt: str, completion: str) -> str:
        muted = self.palette.color(QPalette.ColorRole.PlaceholderText).name()
        scores = [f"reward {self._value(row, 'Reward'):.3f}"]
        if self.show_true:
            scores.append(f"true {self._value(row, 'True'):.3f}")
        return (f"<qt><div style='font-family: monospace; white-space: pre-wrap'>"
                f"<span style='color: {muted}'>{html.escape(prompt)}</span>"
                f"{html.escape(completion)}</div><br>{' · '.join(scores)}</qt>")


def _wrapped(text: str, split: int, font, width: int, muted: QColor, normal: QColor):
    """(layout, height, end): `text` laid out in at most TEXT_LINES lines of `width`, the first
    `split` characters muted; `end` is where the shown text stops."""
    layout = QTextLayout(text, font)
    split = min(split, len(text))
    ranges = []
    for start, length, colour in ((0, split, muted), (split, len(text) - split, normal)):
        fmt = QTextLayout.FormatRange()
        fmt.start, fmt.length = start, length
        fmt.format = QTextCharFormat()
        fmt.format.setForeground(colour)
        ranges.append(fmt)
    layout.setFormats(ranges)
    option = layout.textOption()
    option.setWrapMode(option.WrapMode.WrapAnywhere)
    layout.setTextOption(option)
    layout.beginLayout()
    height, end = 0.0, 0
    for _ in range(TEXT_LINES):
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(width)
        line.setPosition(QPointF(0, height))
        height += line.height()
        end = line.textStart() + line.textLength()
    layout.endLayout()
    return layout, height, end


class PromptCompletionDelegate(QStyledItemDelegate):
    """Paints a Text cell as muted prompt + normal completion, wrapped at any character (a
    character-level model's "words" are not trustworthy break points) up to TEXT_LINES lines."""

    def paint(self, painter, option, index) -> None:
        self.initStyleOption(option, index)
        text, split = option.text, index.data(Qt.ItemDataRole.UserRole) or 0
        option.text = ""
        style = option.widget.style() if option.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        palette = option.palette
        normal = palette.color(QPalette.ColorRole.HighlightedText if selected
                               else QPalette.ColorRole.Text)
        muted = normal if selected else palette.color(QPalette.ColorRole.PlaceholderText)
        rect = option.rect.adjusted(4, 2, -4, -2)
        layout, height, cut = _wrapped(text, split, option.font, rect.width(), muted, normal)
        if cut < len(text):  # show that the text goes on (the tooltip has all of it)
            layout, height, _ = _wrapped(text[: max(0, cut - 1)] + "…", split, option.font,
                                         rect.width(), muted, normal)
        painter.save()
        painter.setClipRect(option.rect)
        top = rect.top() + max(0.0, (rect.height() - height) / 2)
        layout.draw(painter, QPointF(rect.left(), top))
        painter.restore()


class SamplesPanel(QWidget):
    """Latest completions with rewards; a slider looks back over the last HISTORY_STEPS steps."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._history: OrderedDict[int, list[dict]] = OrderedDict()
        self._viewing: int | None = None  # a step picked on the slider; None = follow the latest
        self._show_true: bool | None = None  # None: decide from the data

        self.header = QLabel()
        font = self.header.font()
        font.setWeight(font.Weight.DemiBold)
        self.header.setFont(font)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Look back at the samples of earlier steps")
        self.slider.valueChanged.connect(self._slider_moved)
        self.latest_button = QToolButton()
        self.latest_button.setText("Latest")
        self.latest_button.setToolTip("Follow the newest step again")
        self.latest_button.clicked.connect(self.follow_latest)
        nav = QHBoxLayout()
        nav.setContentsMargins(0, 0, 0, 0)
        nav.addWidget(self.slider, 1)
        nav.addWidget(self.latest_button)

        self.model = SamplesModel(self.palette(), self)
        self.table = QTableView()
        self._text_delegate = PromptCompletionDelegate(self.table)
        self.table.setModel(self.model)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSizeF(max(8.0, self.font().pointSizeF() * 0.95))
        self.table.setFont(mono)
        setup_table(self.table, row_lines=TEXT_LINES)
        self._layout_columns()

        body, self._stack, self.empty = empty_stack(EMPTY_TEXT, self.table)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addLayout(nav)
        layout.addWidget(body, 1)
        self.clear()

    # --- public API
    def show_samples(self, step: int, samples: Sequence[dict]) -> None:
        """Record a step's samples and show them unless the user is looking at an older step."""
        self._history[int(step)] = [dict(s) for s in samples]
        self._history.move_to_end(int(step))
        while len(self._history) > HISTORY_STEPS:
            self._history.popitem(last=False)
        self._sync_slider()
        if self._viewing is None or self._viewing not in self._history:
            self._viewing = None
            self._display(int(step))
        else:  # looking back: keep that step, but say how far the run has got
            shown = self._history[self._viewing]
            self.header.setText(self._header_text(self._viewing, shown, self.model.show_true))

    def show_step(self, step: int) -> None:
        """Look back at a step still in the history (KeyError otherwise)."""
        if step not in self._history:
            raise KeyError(f"step {step} is not in the samples history")
        self._viewing = None if step == next(reversed(self._history)) else step
        self._sync_slider()
        self._display(step)

    def follow_latest(self) -> None:
        self._viewing = None
        self._sync_slider()
        if self._history:
            self._display(next(reversed(self._history)))

    def history_steps(self) -> list[int]:
        return list(self._history)

    def current_step(self) -> int | None:
        return self._shown

    def set_columns(self, show_true: bool | None) -> None:
        """Show the "True" reward column; None decides per step (shown when any differs)."""
        self._show_true = show_true
        self._refresh()

    def set_reward_range(self, lo: float, hi: float) -> None:
        """The task's reward range, the ends of the colour scale."""
        self._lo, self._hi = float(lo), float(hi)
        self._refresh()

    def clear(self) -> None:
        self._history.clear()
        self._viewing = self._shown = None
        if not hasattr(self, "_lo"):
            self._lo, self._hi = 0.0, 1.0
        self.model.set_samples([])
        self.header.setText("Samples")
        self._sync_slider()
        self._stack.setCurrentWidget(self.empty)

    # --- internals
    def _refresh(self) -> None:
        if self._shown is not None:
            self._display(self._shown)
        else:
            self.model.set_layout(bool(self._show_true), self._lo, self._hi)
            self._layout_columns()

    def _wants_true(self, samples: list[dict]) -> bool:
        if self._show_true is not None:
            return self._show_true
        for s in samples:
            r, t = s.get("reward"), s.get("true_reward")
            if t is not None and t == t and t != r:  # t == t: not NaN
                return True
        return False

    def _display(self, step: int) -> None:
        samples = self._history[step]
        self._shown = step
        show_true = self._wants_true(samples)
        if (show_true, self._lo, self._hi) != (self.model.show_true, self.model.lo, self.model.hi):
            self.model.set_layout(show_true, self._lo, self._hi)
            self._layout_columns()
        self.model.set_samples(samples)
        self._stack.setCurrentWidget(self.table if samples else self.empty)
        self.header.setText(self._header_text(step, samples, show_true))

    def _header_text(self, step: int, samples: list[dict], show_true: bool) -> str:
        def mean(key: str) -> str:
            values = [float(s[key]) for s in samples if s.get(key) is not None]
            values = [v for v in values if math.isfinite(v)]
            return _num(sum(values) / len(values)) if values else "—"

        text = f"Step {step} · mean reward {mean('reward')}"
        if show_true:
            text += f" · true {mean('true_reward')}"
        latest = next(reversed(self._history))
        if step != latest:
            text += f"  (latest: {latest})"
        return text

    def _layout_columns(self) -> None:
        header = self.table.horizontalHeader()
        digits = self.table.fontMetrics().horizontalAdvance("+0.00") + 16
        n = self.model.columnCount()
        for col in range(n - 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(col, max(digits, header.fontMetrics().horizontalAdvance("Reward")
                                          + 16))
        header.setSectionResizeMode(n - 1, QHeaderView.ResizeMode.Stretch)
        self.table.setItemDelegateForColumn(1, self._text_delegate if n == 2 else None)
        self.table.setItemDelegateForColumn(2, self._text_delegate if n == 3 else None)

    def changeEvent(self, event) -> None:
        # The reward colours blend into Base: follow a switch between light and dark schemes.
        if event.type() == QEvent.Type.PaletteChange:
            self.model.palette = self.palette()
            self.table.viewport().update()
        super().changeEvent(event)

    def _sync_slider(self) -> None:
        steps = list(self._history)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(steps) - 1))
        at = steps.index(self._viewing) if self._viewing in self._history else len(steps) - 1
        self.slider.setValue(max(0, at))
        self.slider.blockSignals(False)
        # Nothing to look back at yet: keep the empty state free of a dead slider.
        self.slider.setVisible(len(steps) > 1)
        self.latest_button.setVisible(len(steps) > 1)
        self.latest_button.setEnabled(self._viewing is not None)

    def _slider_moved(self, value: int) -> None:
        steps = list(self._history)
        if 0 <= value < len(steps):
            self.show_step(steps[value])
