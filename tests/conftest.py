"""Shared test setup: Qt runs offscreen, and no test may leak a running thread."""

import os
import threading
from pathlib import Path

import pytest

# Must happen before any QApplication exists (pytest-qt creates one lazily on first use), so
# Qt tests run on machines without a display. setdefault lets a developer override it, e.g.
# QT_QPA_PLATFORM=xcb to watch a test.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _user_folders() -> list[Path]:
    """Where the app keeps a user's runs and window settings (QSettings' native file on Linux
    is $XDG_CONFIG_HOME/rlhf-explorer/rlhf-explorer.conf)."""
    import platformdirs

    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [config / "rlhf-explorer", Path(platformdirs.user_data_path("rlhf-explorer"))]


def _snapshot(folders) -> dict[str, tuple[int, int]]:
    out = {}
    for folder in folders:
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file():
                    stat = path.stat()
                    out[str(path)] = (stat.st_mtime_ns, stat.st_size)
        elif folder.exists():
            out[str(folder)] = (folder.stat().st_mtime_ns, 0)
    return out


# The real folders and what is in them, before this process points anything elsewhere.
REAL_USER_FOLDERS = _user_folders()
BEFORE = _snapshot(REAL_USER_FOLDERS)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any test, or any process a test started, wrote to a user's real runs or
    settings (a window's settings once overwrote a developer's: issue 16)."""
    after = _snapshot(REAL_USER_FOLDERS)
    changed = sorted(k for k in set(BEFORE) | set(after) if BEFORE.get(k) != after.get(k))
    if changed:
        session.config.get_terminal_writer().line(
            f"FAILED: the tests wrote outside their temporary folders: {', '.join(changed[:5])}",
            red=True)
        session.exitstatus = 1


@pytest.fixture(autouse=True, scope="session")
def private_user_folders(tmp_path_factory):
    """Tests never read or write the developer's real runs or window settings, and neither do
    the processes they start (`python -m explorer.app` subprocesses inherit the environment)."""
    data = tmp_path_factory.mktemp("data")
    settings = tmp_path_factory.mktemp("settings")
    home = tmp_path_factory.mktemp("xdg")
    os.environ["RLHF_EXPLORER_DATA"] = str(data)
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        os.environ[name] = str(home / name.lower())
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(settings))
    yield


@pytest.fixture(autouse=True)
def qt_garbage_on_the_gui_thread(request):
    """As in the app (explorer/gc_guard.py): while a Qt test runs, the cycle collector runs on
    the GUI thread only, or a training worker may collect a Qt object and deadlock with it."""
    if not {"qtbot", "qapp"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("qapp")
    from explorer.gc_guard import GuiThreadCollector

    collector = GuiThreadCollector()
    yield
    collector.stop()


# Dialogs that block until a person answers. Offscreen nobody does: a test that reached one
# hung until CI's limit. Each is replaced, in every test, by one that fails at once and names
# itself; a test that means to answer one patches it over this.
BLOCKING_DIALOGS = {"QMessageBox": ("question", "information", "warning", "critical"),
                    "QInputDialog": ("getInt", "getDouble", "getText", "getItem"),
                    "QFileDialog": ("getOpenFileName", "getSaveFileName",
                                    "getExistingDirectory")}


@pytest.fixture(autouse=True)
def no_blocking_dialogs(monkeypatch):
    from PySide6 import QtWidgets

    def refuse(where):
        def opened(*args, **kwargs):
            texts = [a for a in args if isinstance(a, str)][:2]
            raise AssertionError(f"a test opened a blocking dialog, {where}{tuple(texts)}: "
                                 "patch it in the test with the answer it should get")
        return staticmethod(opened)

    for cls, names in BLOCKING_DIALOGS.items():
        for name in names:
            monkeypatch.setattr(getattr(QtWidgets, cls), name, refuse(f"{cls}.{name}"))
    monkeypatch.setattr(QtWidgets.QDialog, "exec", lambda self: (_ for _ in ()).throw(
        AssertionError(f"a test ran a modal {type(self).__name__}.exec(): patch it")))
    yield


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves an extra non-daemon Python thread running.

    A leaked thread keeps the interpreter alive after the suite and lets one test's training
    loop race the next. QThreads are not Python threads and are not visible here; the worker
    tests check them separately (isRunning() after stop + wait).
    """
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for thread in leaked:
        # A thread that is finishing anyway gets a moment before it counts as leaked.
        thread.join(timeout=1.0)
    leaked = [t for t in leaked if t.is_alive()]
    assert not leaked, f"test left threads running: {[t.name for t in leaked]}"
    import sys

    worker = sys.modules.get("explorer.worker")
    if worker is not None:
        running = [t for t in list(worker.TrainingThread.instances) if _is_running(t)]
        for t in running:
            t.request_stop()
            t.wait(30_000)
        assert not running, "test left a training QThread running"


def _is_running(thread) -> bool:
    try:
        return thread.isRunning()
    except RuntimeError:  # its C++ side was deleted after it finished: not running
        return False


@pytest.fixture
def window(qtbot, tmp_path):
    """The real main window on a fresh data folder, shown offscreen; closing it must leave no
    training or feedback thread running."""
    from explorer.main_window import MainWindow

    win = MainWindow(data_dir=tmp_path, restore=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    assert not win.runner.busy, "the training thread outlived the window"
    assert not win.rank_tab.worker.isRunning(), "the feedback worker outlived the window"
