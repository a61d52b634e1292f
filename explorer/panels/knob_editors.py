"""One editor per RunConfig knob, chosen from the field's type and metadata alone.

The hyperparameter panel builds every row from these; nothing here knows a field by name except
the small label / choice-text tables, which only change how a knob reads, never how it behaves.
"""

from __future__ import annotations

import html
import re
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.config import check_value, coerce, field_info

ERROR_COLOUR = "#d0453c"
_ZERO_MEANS = re.compile(r"\b0 = ([^.;,()]+?)\s*[.;,()]")

# Names that read better than their capitalised words; everything else goes through _WORDS.
_LABELS = {
    "algo": "Objective",
    "kl_target": "KL target (nats)",
    "trust_target": "d target (nats/token)",
    "trust_beta_min": "Trust β floor",
    "clip_eps_high": "Clip ε high (0 = ε)",
    "vf_coef": "Value coef c₁",
    "ent_coef": "Entropy coef c₂",
    "top_k": "Top-k",
    "kl_in": "KL enters via",
    "grpo_std": "Group spread",
    "rm_k": "RM ranking size",
}
_WORDS = {"kl": "KL", "rm": "RM", "gae": "GAE", "grpo": "GRPO", "dpo": "DPO", "lr": "learning rate",
          "eps": "ε", "beta": "β", "gamma": "γ", "lambda": "λ", "lam": "λ"}

_CHOICE_TEXT = {
    "algo": {"reinforce": "REINFORCE", "kl_penalty": "KL-penalised", "ppo": "PPO",
             "grpo": "GRPO", "dpo": "DPO (on rankings)"},
    "reward_source": {"true": "True reward", "ranked": "Annotator ranks",
                      "learned": "Reward model"},
}
_CHOICE_WORDS = {"cpu": "CPU", "cuda": "CUDA", "bradley_terry": "Bradley–Terry",
                 "plackett_luce": "Plackett–Luce", "grpo": "GRPO", "bnpo": "BNPO",
                 "dr_grpo": "Dr. GRPO", "dapo": "DAPO", "leave_one_out": "Leave one out (RLOO)",
                 "sequence": "Sequence (GSPO)", "ipo": "IPO", "sigmoid": "Sigmoid (DPO)"}


def humanise(name: str) -> str:
    """'clip_eps' -> 'Clip ε', 'lr' -> 'Learning rate', 'beta' -> 'β'."""
    if name in _LABELS:
        return _LABELS[name]
    text = " ".join(_WORDS.get(word, word) for word in name.split("_"))
    # Only Latin initials get a capital: 'β'.upper() is a different (capital) Greek letter.
    return text[0].upper() + text[1:] if text[0].isascii() else text


def choice_text(name: str, choice: str) -> str:
    text = _CHOICE_TEXT.get(name, {}).get(choice) or _CHOICE_WORDS.get(choice)
    if text is None:
        text = choice.replace("_", " ")
        # Codes such as the KL estimators' k1..k3 keep their case; words read as words.
        if not any(c.isdigit() for c in text):
            text = text[0].upper() + text[1:]
    return text


def format_number(value: float | int) -> str:
    """Shortest text that reads back as the same number: 2e-5, 0.95, 1000."""
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    if 0 < abs(value) < 1e-3:
        # Learning rates read as 3e-4 rather than 0.0003; 12 digits keep what was typed.
        text = f"{value:.12e}"
        mantissa, exponent = text.split("e")
        return f"{mantissa.rstrip('0').removesuffix('.')}e{int(exponent)}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    return text.removesuffix(".0")


def range_text(name: str) -> str | None:
    info = field_info(name)
    lo, hi = info["min"], info["max"]
    if lo is None and hi is None:
        return None
    # No-break spaces keep a range on one line when a narrow message label wraps.
    if hi is None:
        return f"≥\u00a0{format_number(lo)}"
    if lo is None:
        return f"≤\u00a0{format_number(hi)}"
    return f"[{format_number(lo)},\u00a0{format_number(hi)}]"


def tooltip(name: str, *, fixed: bool = False) -> str:
    """Rich text (so Qt wraps long help) built from the metadata; `fixed` while a run goes."""
    info = field_info(name)
    parts = []
    if fixed:
        parts.append("<b>Fixed for this run.</b>")
    parts.append(html.escape(info["help"]))
    if (rng := range_text(name)) is not None:
        parts.append(f"Range: {html.escape(rng)}")
    if info["live"]:
        parts.append("<i>Can change during a run</i> (applies at the next step).")
    return "<qt>" + "<br>".join(parts) + "</qt>"


def muted(label: QLabel, *, small: bool = True) -> QLabel:
    # PlaceholderText is the palette's own secondary-text colour, so dark schemes keep working.
    palette = label.palette()
    colour = palette.color(QPalette.ColorRole.PlaceholderText)
    palette.setColor(QPalette.ColorRole.WindowText, colour)
    palette.setColor(QPalette.ColorRole.Text, colour)
    label.setPalette(palette)
    if small:
        font = label.font()
        font.setPointSizeF(font.pointSizeF() * 0.88)
        label.setFont(font)
    return label


class KnobEditor(QObject):
    """Shows one knob's value and reports edits; holds no value of its own beyond the widget.

    `changed(name, final)`: final is False for a keystroke in a line edit (validate only) and
    True once an edit is complete (editingFinished, a toggle, a pick, a spin-box step).
    """

    changed = Signal(str, bool)

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.info = field_info(name)
        self.widget = QWidget()  # the form row's field: editor line + message line
        self.widget.setObjectName(f"knob_{name}")
        column = QVBoxLayout(self.widget)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.setSpacing(4)
        self.editor = self._build(line)
        self.editor.setObjectName(f"edit_{name}")
        column.addLayout(line)
        self.message = QLabel()
        self.message.setObjectName(f"message_{name}")
        self.message.setWordWrap(True)
        self.message.hide()
        column.addWidget(self.message)
        self._error: str | None = None
        self._hint: str | None = None
        self._alert = False

    # --- per-type construction
    def _build(self, line: QHBoxLayout) -> QWidget:
        kind, info = self.info["type"], self.info
        if kind is bool:
            editor = QCheckBox()
            editor.toggled.connect(lambda: self.changed.emit(self.name, True))
        elif info["choices"] is not None:
            editor = QComboBox()
            # Size to the column, not the longest choice, so the panel fits a narrow dock;
            # the open list still shows whole names.
            editor.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            editor.setMinimumContentsLength(8)
            for choice in info["choices"]:
                editor.addItem(choice_text(self.name, choice), choice)
            editor.currentIndexChanged.connect(lambda: self.changed.emit(self.name, True))
        elif kind is int:
            editor = QSpinBox()
            editor.setRange(info["min"] if info["min"] is not None else -(2**31),
                            info["max"] if info["max"] is not None else 2**31 - 1)
            # Without keyboard tracking a typed number arrives once, not digit by digit, so
            # a live knob is not sent to the trainer as 1, 12, 128.
            editor.setKeyboardTracking(False)
            editor.setGroupSeparatorShown(True)
            # "0 = auto" in the help becomes the spin box's text for 0, so the row says what
            # 0 means instead of showing a bare (and seemingly wrong) zero.
            special = _ZERO_MEANS.search(info["help"])
            if info["min"] == 0 and special and len(special.group(1)) <= 20:
                editor.setSpecialValueText(special.group(1))
            editor.valueChanged.connect(lambda: self.changed.emit(self.name, True))
        else:
            editor = QLineEdit()
            editor.textEdited.connect(lambda: self.changed.emit(self.name, False))
            editor.editingFinished.connect(self._finished)
            if kind is str and self.name != "checkpoint":
                # a name (a saved reward model): typed, or set by the Rank tab's "Use for next run"
                editor.setPlaceholderText("none")
                editor.setClearButtonEnabled(True)
                line.addWidget(editor, 1)
                return editor
            if kind is str:
                editor.setPlaceholderText("task default")
                editor.setClearButtonEnabled(True)
                browse = QToolButton()
                browse.setText("…")
                browse.setObjectName(f"browse_{self.name}")
                browse.setToolTip("Choose a safetensors checkpoint")
                browse.clicked.connect(self._browse)
                self.browse = browse
                line.addWidget(editor, 1)
                line.addWidget(browse)
                return editor
            editor.setPlaceholderText(range_text(self.name) or "")
        line.addWidget(editor, 1)
        return editor

    def _finished(self) -> None:
        # editingFinished also fires when focus merely passes through; only a real edit counts
        # (it would otherwise mark the knob as user-set and pin it across objective switches).
        if not self.editor.isModified():
            return
        self.editor.setModified(False)
        # Tidy what was typed ("0.20" -> "0.2") once it is a valid number.
        if self.info["type"] is float:
            try:
                self.set_value(self.value())
            except ValueError:
                pass
        self.changed.emit(self.name, True)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.widget, "Base model checkpoint", self.editor.text(),
            "Safetensors checkpoints (*.safetensors);;All files (*)")
        if path:
            self.editor.setText(path)
            self.changed.emit(self.name, True)

    # --- value in and out
    def value(self) -> Any:
        """The typed value, coerced and checked; ValueError with a message for the user."""
        editor = self.editor
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QComboBox):
            return editor.currentData()
        if isinstance(editor, QSpinBox):
            value = editor.value()
        else:
            value = editor.text()
            if self.info["type"] is float and not value.strip():
                raise ValueError(f"Enter a number in {range_text(self.name)}")
        try:
            value = coerce(self.name, value)
            check_value(self.name, value)
        except ValueError:
            rng = range_text(self.name)
            raise ValueError(f"Must be in {rng}" if rng else "Invalid value") from None
        return value

    def set_value(self, value: Any) -> None:
        editor = self.editor
        blocked = editor.blockSignals(True)
        try:
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QComboBox):
                editor.setCurrentIndex(max(editor.findData(value), 0))
            elif isinstance(editor, QSpinBox):
                editor.setValue(int(value))
            elif self.info["type"] is float:
                editor.setText(format_number(value))
                editor.setCursorPosition(0)
            else:
                editor.setText(str(value))
        finally:
            editor.blockSignals(blocked)

    # --- presentation
    def set_error(self, error: str | None) -> None:
        if error == self._error:
            return
        self._error = error
        if isinstance(self.editor, QLineEdit):
            self.editor.setStyleSheet(
                f"QLineEdit {{ border: 1px solid {ERROR_COLOUR}; border-radius: 3px;"
                " padding: 2px 3px; }" if error else "")
        self._show_message()

    def set_hint(self, hint: str | None, *, alert: bool = False) -> None:
        """A note under the value; `alert` draws it like an error (an edit the run refused)."""
        self._hint, self._alert = hint, alert
        self._show_message()

    @property
    def hint(self) -> str | None:
        return self._hint

    @property
    def error(self) -> str | None:
        return self._error

    def _show_message(self) -> None:
        label = self.message
        label.setPalette(QPalette())
        if self._error:
            label.setText(self._error)
            label.setStyleSheet(f"color: {ERROR_COLOUR};")
        elif self._hint:
            label.setText(self._hint)
            label.setStyleSheet(f"color: {ERROR_COLOUR};" if self._alert else "")
            if not self._alert:
                muted(label, small=False)
        label.setVisible(bool(self._error or self._hint))
        font = label.font()
        font.setPointSizeF(self.widget.font().pointSizeF() * 0.88)
        label.setFont(font)

    def set_enabled(self, enabled: bool) -> None:
        self.editor.setEnabled(enabled)
        if hasattr(self, "browse"):
            self.browse.setEnabled(enabled)
        self.set_tooltip(tooltip(self.name, fixed=not enabled))

    def set_tooltip(self, text: str) -> None:
        self.editor.setToolTip(text)
        self.widget.setToolTip(text)
