"""The window's layout (geometry, docks, tabs) and its last config, kept between sessions in
QSettings."""

from __future__ import annotations

import json

from PySide6.QtCore import QByteArray, QSettings

from core.config import RunConfig

LAYOUT_VERSION = 2   # 2: the Watch / Rank / Math tabs; an older layout is not restored


def restore_layout(window, panel) -> bool:
    """Put `window` and `panel`'s config back as they were; False when there was nothing (or
    an older layout) to restore."""
    s = QSettings()
    if s.value("layoutVersion", 0, int) != LAYOUT_VERSION:
        return False
    geometry, state = s.value("geometry"), s.value("windowState")
    if isinstance(geometry, QByteArray):
        window.restoreGeometry(geometry)
    if isinstance(state, QByteArray):
        window.restoreState(state)
    text = s.value("lastConfig", "", str)
    if text:
        try:
            panel.set_config(RunConfig.from_dict(json.loads(text), algo_defaults=False))
        except (ValueError, TypeError):
            pass  # settings from an older version: start from defaults
    return True


def save_layout(window, panel) -> None:
    s = QSettings()
    s.setValue("layoutVersion", LAYOUT_VERSION)
    s.setValue("geometry", window.saveGeometry())
    s.setValue("windowState", window.saveState())
    cfg = panel.config()
    if cfg is not None:
        s.setValue("lastConfig", json.dumps(cfg.to_dict()))
