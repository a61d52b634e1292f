"""The About box and the version facts it shows (also handy in bug reports)."""

from __future__ import annotations

import platform
from importlib import metadata

from explorer.identity import APP_DISPLAY_NAME, app_version


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def version_info() -> dict[str, str]:
    """Versions of the app and of the libraries whose bugs users most often hit.

    Keys: "app", "Qt", "PySide6", "torch", "Python". Qt is the runtime version, which can
    differ from the one PySide6 was built against.
    """
    # Imported here so that headless code can ask for versions without loading Qt first.
    import PySide6
    from PySide6.QtCore import qVersion

    return {
        "app": app_version(),
        "Qt": qVersion(),
        "PySide6": PySide6.__version__,
        # Read from package metadata: importing torch only for its version costs seconds.
        "torch": _dist_version("torch"),
        "Python": platform.python_version(),
    }


def about_html(info: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><td style='padding-right:12px'>{name}</td><td><b>{version}</b></td></tr>"
        for name, version in info.items()
        if name != "app"
    )
    return (
        f"<h3 style='margin-bottom:2px'>{APP_DISPLAY_NAME} {info['app']}</h3>"
        "<p>A desktop lab to watch RLHF happen on a tiny GPT, live: rank samples, "
        "turn rankings into rewards, and optimise the policy with REINFORCE, "
        "a KL penalty, PPO or GRPO.</p>"
        f"<table>{rows}</table>"
    )


def make_about_box(parent=None):
    """A ready-to-show About box; the caller decides between open() and exec()."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(parent)
    box.setObjectName("aboutBox")
    box.setWindowTitle(f"About {APP_DISPLAY_NAME}")
    box.setIcon(QMessageBox.Icon.Information)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(about_html(version_info()))
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    return box
