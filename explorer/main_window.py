"""The main window: a central plot area and docks that later issues fill with panels."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from explorer.about import make_about_box
from explorer.app import APP_DISPLAY_NAME

# objectName -> (title, empty-state text). The objectNames are what saveState()/restoreState()
# key the layout on, so they must never change once users have saved layouts.
DOCKS: dict[str, tuple[str, str]] = {
    "hyperparametersDock": (
        "Hyperparameters",
        "The task, the algorithm and its knobs will appear here. "
        "Changes made during a run apply at the next step.",
    ),
    "samplesDock": (
        "Samples",
        "Sampled completions with their rewards will stream in here while a run trains, "
        "so you can see what the reward is really paying for.",
    ),
    "runsDock": (
        "Runs",
        "Finished and saved runs will be listed here, ready to reload and compare.",
    ),
}


def _muted(label: QLabel) -> QLabel:
    # PlaceholderText is the palette's own "secondary text" colour, so the muted look
    # follows the dark/light scheme instead of hard-coding a grey.
    palette = label.palette()
    muted = palette.color(QPalette.ColorRole.PlaceholderText)
    # A label draws with Text rather than WindowText when its parent sits on Base; set both.
    palette.setColor(QPalette.ColorRole.WindowText, muted)
    palette.setColor(QPalette.ColorRole.Text, muted)
    label.setPalette(palette)
    return label


def empty_state(title: str, detail: str, *, large: bool = False) -> QWidget:
    """A centred title and a muted explanation, shown where content will appear later."""
    widget = QWidget()
    layout = QVBoxLayout(widget)
    # Wide side margins keep the paragraph a readable column on a wide window.
    side = 72 if large else 20
    layout.setContentsMargins(side, 24, side, 24)
    layout.setSpacing(10 if large else 6)
    layout.addStretch(1)

    heading = QLabel(title)
    font = heading.font()
    font.setPointSizeF(font.pointSizeF() * (2.0 if large else 1.15))
    font.setWeight(font.Weight.DemiBold)
    heading.setFont(font)
    heading.setAlignment(Qt.AlignmentFlag.AlignHCenter)
    layout.addWidget(heading)

    body = _muted(QLabel(detail))
    body.setWordWrap(True)
    # Centre the text inside the label, not the label in the layout: a layout alignment
    # flag stops the layout asking the label how tall its wrapped text is, and clips it.
    body.setAlignment(Qt.AlignmentFlag.AlignHCenter)
    if large:
        font = body.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        body.setFont(font)
    layout.addWidget(body)
    layout.addStretch(2)
    return widget


class MainWindow(QMainWindow):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_DISPLAY_NAME)
        self.resize(1280, 800)

        central = empty_state(
            "No run yet",
            "Pick a task and press Start. Reward, KL and the policy's entropy will plot "
            "here live as the tiny GPT learns.",
            large=True,
        )
        central.setObjectName("emptyState")
        # The plot area sits on the "base" colour like a document, the docks on the window
        # colour around it; this gives the layout its shape before there is any content.
        central.setBackgroundRole(QPalette.ColorRole.Base)
        central.setAutoFillBackground(True)
        self.setCentralWidget(central)

        docks = {name: self._add_dock(name, *texts) for name, texts in DOCKS.items()}
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, docks["hyperparametersDock"])
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, docks["samplesDock"])
        self.splitDockWidget(
            docks["hyperparametersDock"], docks["runsDock"], Qt.Orientation.Vertical
        )
        self.resizeDocks(
            [docks["hyperparametersDock"], docks["samplesDock"]],
            [320, 360],
            Qt.Orientation.Horizontal,
        )
        self.resizeDocks(
            [docks["hyperparametersDock"], docks["runsDock"]], [520, 280], Qt.Orientation.Vertical
        )

        # Fusion's dock title bars are cramped; a little padding makes them read as headers.
        self.setStyleSheet("QDockWidget::title { padding: 6px 8px; }")
        self._build_menus(list(docks.values()))
        self.statusBar().showMessage("Ready")

    def _add_dock(self, name: str, title: str, detail: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(empty_state(f"No {title.lower()} yet", detail))
        dock.setMinimumWidth(220)
        return dock

    def _build_menus(self, docks: list[QDockWidget]) -> None:
        # objectNames let tests and later issues find menus and actions without their labels.
        file_menu = self.menuBar().addMenu("&File")
        file_menu.setObjectName("fileMenu")
        quit_action = QAction("&Quit", self)
        quit_action.setObjectName("quitAction")
        # QKeySequence.Quit is empty on Windows; the issue asks for Ctrl+Q everywhere.
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        view_menu = self.menuBar().addMenu("&View")
        view_menu.setObjectName("viewMenu")
        for dock in docks:
            # The dock's own toggle action stays in sync when the user closes it by its button.
            view_menu.addAction(dock.toggleViewAction())

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.setObjectName("helpMenu")
        about_action = QAction(f"&About {APP_DISPLAY_NAME}", self)
        about_action.setObjectName("aboutAction")
        about_action.setMenuRole(QAction.MenuRole.AboutRole)
        about_action.triggered.connect(self.show_about)
        help_menu.addAction(about_action)
        about_qt_action = QAction("About &Qt", self)
        about_qt_action.setMenuRole(QAction.MenuRole.AboutQtRole)
        about_qt_action.triggered.connect(QApplication.aboutQt)
        help_menu.addAction(about_qt_action)

    def show_about(self):
        """Open the About box window-modally without blocking; returns it for tests."""
        box = make_about_box(self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box
