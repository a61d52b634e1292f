"""The hyperparameter panel: every RunConfig knob as a form row, generated from its metadata.

The source of truth is a `RunConfig` value: the widgets only display it and report edits. Each
edit re-reads all rows, validates them field by field (`coerce` + `check_value`, shown inline)
and then as a whole (constructing `RunConfig`, whose cross-field errors go in a panel message).
During a run the config is what the trainer has applied; `explorer.panels.live_edits` tracks the
edits still in flight and how their rows show them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.config import FIELDS, RunConfig, applies
from explorer.panels.knob_editors import (
    ERROR_COLOUR,
    KnobEditor,
    humanise,
    muted,
    tooltip,
)
from explorer.panels.live_edits import LiveEdits
from explorer.panels.sections import FoldingSection

# The three choices that decide which knobs matter sit above the scrolling groups.
TOP_FIELDS = ("task", "algo", "reward_source")
GROUP_TITLES = {
    "rollout": "Rollout",
    "optimisation": "Optimisation",
    "kl": "KL to the reference",
    "returns": "Returns and baseline",
    "ppo": "Clipping and loss terms",
    "trust": "Trust region (KL(π_old ‖ π_θ) penalty)",
    "grpo": "Group advantages and the GRPO family",
    "rewards": "Rewards from rankings",
    "run": "Run and storage",
}
# Rarely touched once set up; start folded so the algorithm's knobs fit the dock.
COLLAPSED_GROUPS = frozenset({"run"})
LABEL_WIDTH_MAX = 118
CONFIG_FILTER = "Run configs (*.toml *.json);;TOML (*.toml);;JSON (*.json)"


class HyperparameterPanel(QWidget):
    """Edits a RunConfig. See the module docstring; signals:

    configChanged(RunConfig): the rows form a new valid config (not emitted by set_config).
    validityChanged(bool): the rows went from valid to invalid or back.
    liveEditRequested(dict): while running, live knobs got new valid values (name -> value).
        The window forwards them to the trainer and reports back: edits_pending once the trainer
        took them, edits_refused if not, edits_applied when a step echoes them.
    """

    configChanged = Signal(object)
    validityChanged = Signal(bool)
    liveEditRequested = Signal(dict)

    def __init__(self, config: RunConfig | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("hyperparameterPanel")
        self._config = config or RunConfig.for_algo(RunConfig.algo)
        self._valid = True
        self._running = False
        # Knobs the user has set by hand: switching objective keeps these and re-defaults the rest.
        self._touched: set[str] = set()
        self._message_box: QMessageBox | None = None
        self.editors: dict[str, KnobEditor] = {}
        self._labels: dict[str, QLabel] = {}
        self._sections: dict[str, FoldingSection] = {}
        self._row_form: dict[str, QFormLayout] = {}
        self._build()
        self._live = LiveEdits(self.editors, self._labels)
        self.set_config(self._config)

    # --- construction
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.setSpacing(6)

        top = QFormLayout()
        top.setHorizontalSpacing(10)
        top.setVerticalSpacing(6)
        top.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # Same insets as a group's body (frame + form margin) so all fields share one column.
        top.setContentsMargins(11, 0, 13, 0)
        for name in TOP_FIELDS:
            self._add_row(top, name)
        outer.addLayout(top)

        self.message = QLabel()
        self.message.setObjectName("panelMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet(f"color: {ERROR_COLOUR};")
        self.message.hide()
        outer.addWidget(self.message)

        content = QWidget()
        column = QVBoxLayout(content)
        column.setContentsMargins(0, 0, 4, 0)
        column.setSpacing(8)
        groups: dict[str, list[str]] = {}
        for name, f in FIELDS.items():
            if name not in TOP_FIELDS:
                groups.setdefault(f.metadata["group"], []).append(name)
        order = [g for g in GROUP_TITLES if g in groups] + [g for g in groups
                                                             if g not in GROUP_TITLES]
        for group in order:
            section = FoldingSection(GROUP_TITLES.get(group, humanise(group)),
                                     group in COLLAPSED_GROUPS)
            section.setObjectName(f"group_{group}")
            self._sections[group] = section
            for name in groups[group]:
                self._add_row(section.form, name)
            column.addWidget(section)
        column.addStretch(1)

        scroll = QScrollArea()
        scroll.setObjectName("hyperparameterScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        outer.addWidget(scroll, 1)

        self.run_note = muted(QLabel("Greyed knobs are fixed for this run."))
        self.run_note.hide()
        outer.addWidget(self.run_note)

        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        self.reset_button = QPushButton("Reset to defaults")
        self.reset_button.setToolTip("Defaults of the chosen objective; task and reward "
                                     "source stay.")
        self.reset_button.clicked.connect(self.reset_to_defaults)
        self.load_button = QPushButton("Load…")
        self.load_button.setToolTip("Load config… (TOML or JSON)")
        self.load_button.clicked.connect(self._load_dialog)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save config… (TOML or JSON)")
        self.save_button.clicked.connect(self._save_dialog)
        buttons.addWidget(self.reset_button, 1)
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.save_button)
        outer.addLayout(buttons)

        # One label width across all groups so the fields line up down the whole panel; long
        # names wrap instead of widening the column past what a 320 px dock can spare.
        width = min(max(label.sizeHint().width() for label in self._labels.values()),
                    LABEL_WIDTH_MAX)
        for label in self._labels.values():
            label.setFixedWidth(width)

    def _add_row(self, form: QFormLayout, name: str) -> None:
        editor = KnobEditor(name, self)
        editor.changed.connect(self._on_changed)
        label = QLabel(humanise(name))
        label.setObjectName(f"label_{name}")
        label.setWordWrap(True)
        label.setBuddy(editor.editor)
        text = tooltip(name)
        label.setToolTip(text)
        editor.set_tooltip(text)
        form.addRow(label, editor.widget)
        self.editors[name] = editor
        self._labels[name] = label
        self._row_form[name] = form

    # --- public API
    def config(self) -> RunConfig | None:
        """The current valid config, or None while a row (or a cross-field rule) is invalid."""
        return self._config if self._valid else None

    def set_config(self, config: RunConfig) -> None:
        """Show `config`. Emits validityChanged if validity changes, never configChanged."""
        self._config = config
        defaults = RunConfig.for_algo(config.algo, task=config.task,
                                      reward_source=config.reward_source)
        self._touched = {n for n in FIELDS if getattr(config, n) != getattr(defaults, n)}
        for name, editor in self.editors.items():
            editor.set_value(getattr(config, name))
        self._update_visibility()
        self._validate(emit=False)

    def set_running(self, running: bool) -> None:
        """Fix the non-live knobs for a run; live ones stay editable and emit liveEditRequested."""
        self._running = running
        self._live.set_running(running, self._config)
        for button in (self.reset_button, self.load_button):
            button.setEnabled(not running)
        self.run_note.setVisible(running)

    def is_running(self) -> bool:
        return self._running

    # --- live edits, as the trainer answers them (see explorer.panels.live_edits)
    def edits_pending(self, changes: dict, *, queued: bool = False) -> None:
        """The trainer took `changes` for its next step (queued: once set-up ends)."""
        self._live.sent(changes, queued, self._config)

    def edits_applied(self, changes: dict) -> None:
        """A step's "set" event: the trainer now runs with `changes`, so the config does too."""
        before, self._config = self._config, self._config.with_changes(**changes)
        self._live.applied(before, self._config, changes)

    def edits_refused(self, changes: dict, error: str) -> None:
        """The run refused `changes`; their rows go back."""
        self._live.refused(self._config, changes, error)

    def pending_edits(self) -> dict:
        """Live knobs sent to the trainer and not yet applied: name -> latest value."""
        return self._live.pending()

    def is_shown(self, name: str) -> bool:
        """Whether knob `name` has a visible row for the current objective and reward source."""
        return self._row_form[name].isRowVisible(self.editors[name].widget) and (
            name in TOP_FIELDS or not self._sections[FIELDS[name].metadata["group"]].isHidden())

    def touched(self) -> frozenset[str]:
        return frozenset(self._touched)

    def reset_to_defaults(self) -> None:
        """Defaults of the chosen objective; the task and reward source stay as chosen."""
        current = {n: self._read(n) for n in TOP_FIELDS}
        try:
            config = RunConfig.for_algo(current["algo"], task=current["task"],
                                        reward_source=current["reward_source"])
        except ValueError:
            config = RunConfig.for_algo(RunConfig.algo)
        self._apply_user_config(config)

    def load_config(self, path: str | Path) -> bool:
        """Load a TOML/JSON config into the rows; errors go to a message box. True on success."""
        try:
            config = RunConfig.load(path)
        except (ValueError, OSError) as exc:
            self._show_error("Could not load config", str(exc))
            return False
        self._apply_user_config(config)
        return True

    def save_config(self, path: str | Path) -> bool:
        """Save the current config (.toml, else JSON); errors go to a message box."""
        config = self.config()
        if config is None:
            self._show_error("Could not save config",
                             "Some settings are invalid; fix the highlighted fields first.")
            return False
        try:
            config.save(path)
        except (OSError, ValueError, TypeError) as exc:
            self._show_error("Could not save config", str(exc))
            return False
        return True

    # --- reactions
    def _on_changed(self, name: str, final: bool) -> None:
        self._touched.add(name)
        if name in ("algo", "task", "reward_source"):
            self._apply_defaults(self._read("algo"), self._read("task"),
                                 self._read("reward_source"))
        if name in TOP_FIELDS:
            self._update_visibility()
        if self._running and FIELDS[name].metadata["live"]:
            self._live_edit(name, final)
        else:
            self._validate(emit=True)

    def _apply_defaults(self, algo: str, task: str, source: str) -> None:
        """Untouched knobs take the chosen objective's, reward source's and task's defaults."""
        defaults = RunConfig.for_algo(algo, task=task, reward_source=source)
        for name, f in FIELDS.items():
            if (f.metadata["per_algo"] or f.metadata["per_task"] or f.metadata["per_source"]) \
                    and name not in self._touched:
                self.editors[name].set_value(getattr(defaults, name))

    def _live_edit(self, name: str, final: bool) -> None:
        # Keystrokes only validate; the trainer hears of a value once the edit is finished.
        candidate = self._validate(emit=False, commit=False)
        if not final or candidate is None:
            return
        # The config changes only when the trainer echoes the edit (edits_applied).
        edits = self._live.edits(candidate, self._config)
        if edits:
            self.liveEditRequested.emit(edits)

    def _apply_user_config(self, config: RunConfig) -> None:
        before = self.config()
        self.set_config(config)
        self._touched = set()  # a loaded or reset config counts as the new baseline
        if self._valid and config != before:
            self.configChanged.emit(config)

    # --- validation
    def _read(self, name: str) -> Any:
        return self.editors[name].value()

    def _validate(self, *, emit: bool, commit: bool = True) -> RunConfig | None:
        """Check every row, show errors; returns the candidate config (None if invalid)."""
        values, bad = {}, False
        for name, editor in self.editors.items():
            try:
                values[name] = editor.value()
                editor.set_error(None)
            except ValueError as exc:
                editor.set_error(str(exc))
                bad = True
        candidate, panel_error = None, None
        if not bad:
            try:
                candidate = RunConfig(**values)
            except ValueError as exc:
                panel_error = str(exc)
        elif any(e.error for n, e in self.editors.items() if not self.is_shown(n)):
            panel_error = "A hidden setting is invalid."
        self.message.setText(f"⚠ {panel_error}" if panel_error else "")
        self.message.setVisible(panel_error is not None)
        valid = candidate is not None
        if valid != self._valid:
            self._valid = valid
            self.validityChanged.emit(valid)
        if valid and commit and candidate != self._config:
            self._config = candidate
            if emit:
                self.configChanged.emit(candidate)
        return candidate

    def _update_visibility(self) -> None:
        try:
            algo, source = self._read("algo"), self._read("reward_source")
        except ValueError:
            return
        shown_groups: set[str] = set()
        for name, editor in self.editors.items():
            if name in TOP_FIELDS:
                continue
            shown = applies(name, algo, source)
            if not shown and editor.error:
                # A row the user can no longer see must not keep the config invalid.
                editor.set_value(getattr(self._config, name))
                editor.set_error(None)
            self._row_form[name].setRowVisible(editor.widget, shown)
            if shown:
                shown_groups.add(FIELDS[name].metadata["group"])
        for group, section in self._sections.items():
            section.setHidden(group not in shown_groups)

    # --- dialogs
    def _show_error(self, title: str, text: str) -> None:
        # open() rather than exec(): window-modal without a nested event loop, so tests and
        # a training worker's signals keep running while it is up.
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                          self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self._message_box = box

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load config", "", CONFIG_FILTER)
        if path:
            self.load_config(path)

    def _save_dialog(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Save config", "run.toml",
                                                   CONFIG_FILTER)
        if path:
            if not Path(path).suffix:
                path += ".json" if "JSON" in chosen and "TOML" not in chosen else ".toml"
            self.save_config(path)
