"""The hyperparameter rows during a run: which are fixed, which edits are in flight, and how a
row shows them.

While a run goes, the panel's RunConfig is what the trainer has applied. A finished edit of a
live knob is sent to the trainer; it joins the panel's config only when a step's "set" event
echoes it. Until then its row shows the requested value marked pending, with the value the run
still uses. An edit the run refuses (at once: core/rl/run_control.py checks it, in set-up too)
puts the row back to what the trainer has (or will have, once earlier edits land) and says why,
so no row ever claims a value the trainer did not get.

`LiveEdits` keeps the in-flight ledger and draws the rows; the panel owns the config and passes it
in. Echoes are matched to requests by value, because the trainer's event names no request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtWidgets import QLabel

from core.config import FIELDS, RunConfig, live_fields
from explorer.panels.knob_editors import KnobEditor, format_number

LIVE_HINT = "↻ applies at the next step"
PENDING_HINT = "⧗ pending: applies at the next step (the run still uses {now})"
QUEUED_HINT = "⧗ pending: applies once set-up ends (the run starts with {now})"
REFUSED_HINT = "✕ {value} not applied: {error}"


def _text(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_number(value)
    return str(value)


@dataclass(frozen=True)
class _Request:
    value: Any
    queued: bool  # asked for during set-up: applies at the first step


class LiveEdits:
    """The in-flight ledger of one panel's live edits. See the module docstring."""

    def __init__(self, editors: dict[str, KnobEditor], labels: dict[str, QLabel]):
        self._editors = editors
        self._labels = labels
        self._running = False
        self._in_flight: dict[str, list[_Request]] = {}  # per knob, oldest first
        self._refused: dict[str, str] = {}               # knob -> the row's refusal note

    def set_running(self, running: bool, config: RunConfig) -> None:
        """Fix the non-live rows for a run; when it ends, edits that never landed are dropped."""
        if not running:
            for name in self._in_flight:
                self._editors[name].set_value(getattr(config, name))
            self._in_flight.clear()
            self._refused.clear()
        self._running = running
        for name, editor in self._editors.items():
            live = FIELDS[name].metadata["live"]
            editor.set_enabled(live or not running)
            self._labels[name].setEnabled(live or not running)
            self._draw(name, config)

    def pending(self) -> dict[str, Any]:
        """The latest value in flight per knob: sent to the trainer, not yet echoed."""
        return {name: flight[-1].value for name, flight in self._in_flight.items()}

    def expected(self, name: str, config: RunConfig) -> Any:
        """What knob `name` will be once everything in flight has landed."""
        flight = self._in_flight.get(name)
        return flight[-1].value if flight else getattr(config, name)

    def edits(self, candidate: RunConfig, config: RunConfig) -> dict[str, Any]:
        """Every live knob whose row differs from what the trainer has or will have, so one typed
        but not yet finished elsewhere goes along rather than being silently lost."""
        return {n: getattr(candidate, n) for n in live_fields()
                if getattr(candidate, n) != self.expected(n, config)}

    def sent(self, changes: dict, queued: bool, config: RunConfig) -> None:
        """The trainer took `changes` (an edit of the rows, or one made elsewhere)."""
        for name, value in changes.items():
            if name not in self._editors:
                continue
            shown = self.expected(name, config)
            self._in_flight.setdefault(name, []).append(_Request(value, queued))
            self._refused.pop(name, None)
            self._show(name, shown, config)

    def applied(self, before: RunConfig, after: RunConfig, changes: dict) -> None:
        """A step applied `changes` (the panel's config went from `before` to `after`)."""
        for name in changes:
            if name not in self._editors:
                continue
            shown = self.expected(name, before)
            flight = self._in_flight.get(name, [])
            # The trainer's mailbox keeps the last value per knob, so an echo settles every
            # request up to the last one that asked for this value.
            hits = [i for i, r in enumerate(flight) if r.value == getattr(after, name)]
            if hits:
                del flight[:hits[-1] + 1]
            if not flight:
                self._in_flight.pop(name, None)
            self._show(name, shown, after)

    def refused(self, config: RunConfig, changes: dict, error: str) -> None:
        """The run refused `changes` as they were asked for (its RunControl checks at once,
        during set-up too), so they never entered the ledger; the rows go back."""
        for name, value in changes.items():
            if name not in self._editors:
                continue
            self._editors[name].set_value(self.expected(name, config))
            self._refused[name] = REFUSED_HINT.format(value=_text(value), error=error)
            self._draw(name, config)

    def _show(self, name: str, shown: Any, config: RunConfig) -> None:
        """Put the expected value in the row, unless the user is part-way through typing
        something other than what the row showed."""
        editor, now = self._editors[name], self.expected(name, config)
        try:
            untouched = editor.value() == shown
        except ValueError:
            untouched = False
        if untouched and now != shown:
            editor.set_value(now)
        self._draw(name, config)

    def _draw(self, name: str, config: RunConfig) -> None:
        editor = self._editors[name]
        flight = self._in_flight.get(name)
        if not (self._running and FIELDS[name].metadata["live"]):
            editor.set_hint(None)
        elif name in self._refused:
            editor.set_hint(self._refused[name], alert=True)
        elif flight:
            hint = QUEUED_HINT if flight[-1].queued else PENDING_HINT
            editor.set_hint(hint.format(now=_text(getattr(config, name))))
        else:
            editor.set_hint(LIVE_HINT)
