"""The entry point works without a display, and the main window assembles its parts."""

import os
import subprocess
import sys
import textwrap

import pytest


def _headless_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(name, None)
    return env


def _run_python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        env=_headless_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_needs_no_display():
    result = _run_python("-m", "explorer.app", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: rlhf-explorer")
    assert "--data-dir" in result.stdout


def test_version_needs_no_display():
    result = _run_python("-m", "explorer.app", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("rlhf-explorer ")


def test_parser_does_not_import_qt():
    code = textwrap.dedent(
        """
        import sys
        from explorer.app import build_parser
        parser = build_parser()
        parser.parse_args(["--data-dir", "/tmp/x"])
        assert hasattr(parser, "subparsers")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "pyqtgraph"))
        assert not loaded, loaded
        print("ok")
        """
    )
    result = _run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_subcommands_dispatch_to_their_handler():
    from explorer.app import build_parser

    parser = build_parser()
    cmd = parser.subparsers.add_parser("echo")
    cmd.add_argument("value", type=int)
    cmd.set_defaults(func=lambda args: args.value)
    args = parser.parse_args(["--data-dir", "d", "echo", "3"])
    assert (args.command, args.data_dir, args.func(args)) == ("echo", "d", 3)


def test_version_info_is_complete():
    from explorer.about import version_info

    info = version_info()
    for key in ("app", "Qt", "PySide6", "torch", "Python"):
        assert info.get(key), f"missing {key}: {info}"
    assert info["Qt"].startswith("6.")


@pytest.fixture
def window(qtbot):
    from explorer.main_window import MainWindow

    # restore=False: a layout saved by an earlier test's window (a hidden dock) is not this one's
    win = MainWindow(restore=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_main_window_has_title_and_docks(window):
    from PySide6.QtWidgets import QDockWidget

    assert "RLHF Explorer" in window.windowTitle()
    names = {d.objectName(): d for d in window.findChildren(QDockWidget)}
    for name, title in [
        ("hyperparametersDock", "Hyperparameters"),
        ("samplesDock", "Samples"),
        ("runsDock", "Runs"),
    ]:
        assert names[name].windowTitle() == title
        assert names[name].isVisible()
    # Layouts are saved by objectName; every dock and toolbar must have one.
    assert window.saveState()


def test_view_menu_toggles_docks(window):
    from PySide6.QtWidgets import QDockWidget, QMenu

    dock = window.findChild(QDockWidget, "samplesDock")
    view_menu = window.findChild(QMenu, "viewMenu")
    action = next(a for a in view_menu.actions() if a.text() == "Samples")
    action.trigger()
    assert not dock.isVisible()
    action.trigger()
    assert dock.isVisible()


def test_about_box_opens_and_closes(window, qtbot):
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QMessageBox

    window.findChild(QAction, "aboutAction").trigger()
    box = window.findChild(QMessageBox, "aboutBox")
    qtbot.waitExposed(box)
    text = box.text()
    for needle in ("RLHF Explorer", "Qt", "PySide6", "torch", "Python"):
        assert needle in text
    box.accept()
    qtbot.waitUntil(lambda: not box.isVisible())


def test_quit_closes_the_window(window, qtbot):
    from PySide6.QtGui import QAction

    quit_action = window.findChild(QAction, "quitAction")
    assert quit_action.shortcut().toString() == "Ctrl+Q"
    quit_action.trigger()
    qtbot.waitUntil(lambda: not window.isVisible())


def test_the_cycle_collector_runs_on_the_gui_thread_only():
    """explorer/gc_guard.py: a worker must never collect a Qt object (that deadlocked)."""
    import gc
    import weakref

    from PySide6.QtWidgets import QApplication

    from explorer.gc_guard import GuiThreadCollector

    QApplication.instance() or QApplication([])   # not the qapp fixture: it wraps a collector
    assert gc.isenabled()

    collector = GuiThreadCollector()
    try:
        assert not gc.isenabled()

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a          # a cycle only the collector can free
        gone = weakref.ref(a)
        del a, b
        collector.threshold = (0, 0, 0)  # as if the counts were past Python's thresholds
        collector.check()
        assert gone() is None
    finally:
        collector.stop()
    assert gc.isenabled()
