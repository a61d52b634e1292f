"""Entry point of ``rlhf-explorer``: a command-line front door that opens the GUI by default.

Headless sub-commands (training from a config, exporting runs, ...) hang off the parser's
``subparsers`` attribute; register them inside `build_parser`, e.g.::

    cmd = parser.subparsers.add_parser("train", help="run a config without the GUI")
    cmd.add_argument("config")
    cmd.set_defaults(func=run_train)  # func(args: Namespace) -> int exit status

``main`` calls ``args.func(args)`` when a sub-command was given and opens the window otherwise.
A handler should import what it needs inside itself, so that ``--help`` stays fast.

Nothing at module level may import Qt: ``--help`` and the headless commands must work on a
machine without a display or without PySide6 loaded at all (tests/explorer/test_app.py checks it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from explorer.identity import APP_DISPLAY_NAME, APP_NAME, ORGANIZATION, app_version

__all__ = ["APP_DISPLAY_NAME", "APP_NAME", "ORGANIZATION", "app_version", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The CLI parser. Its ``subparsers`` attribute is where headless sub-commands go."""
    from explorer.cli.errors import OneLineParser

    parser = OneLineParser(
        prog=APP_NAME,
        description=(
            "A desktop lab to watch RLHF happen on a tiny GPT, live. "
            "Without a command, opens the window."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {app_version()}")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="folder for runs and rankings (default: the user data folder)",
    )
    parser.add_argument("--verbose", action="store_true",
                        help="log what core does, and show the traceback of an internal error")
    subparsers = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        title="commands",
        description="headless commands; without one, the window opens",
    )
    # argparse gives no public handle back to the sub-parsers action; keep one on the parser.
    parser.subparsers = subparsers  # type: ignore[attr-defined]
    # Headless sub-commands (explorer/cli/commands.py imports no Qt).
    from explorer.cli.commands import register

    register(subparsers)
    return parser


def run_gui(args: argparse.Namespace) -> int:
    """Create the QApplication, show the main window on the run store and run the event loop."""
    # Qt is imported here, not at module level, so the CLI never needs a display.
    from PySide6.QtWidgets import QApplication

    from explorer.main_window import MainWindow

    # Identity first: QSettings and the platform's data folders derive their paths from it.
    QApplication.setApplicationName(APP_NAME)
    QApplication.setApplicationDisplayName(APP_DISPLAY_NAME)
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationVersion(app_version())
    app = QApplication.instance() or QApplication(sys.argv[:1])
    # Fusion looks the same on every platform and, since Qt 6.5, takes its palette from the
    # platform theme, so it follows the system's dark/light setting.
    app.setStyle("Fusion")
    install_crash_dialog()
    from explorer.gc_guard import GuiThreadCollector

    collector = GuiThreadCollector()   # never collect Qt objects on a worker (explorer/gc_guard.py)
    try:
        window = MainWindow(data_dir=args.data_dir)
    except ValueError as exc:   # an unusable data folder or damaged run store
        print(f"{APP_NAME}: error: {exc}", file=sys.stderr)   # one line, as in the CLI
        if app.platformName() != "offscreen":   # started from a menu, there is no terminal
            from PySide6.QtWidgets import QMessageBox

            QMessageBox.critical(None, f"{APP_DISPLAY_NAME} cannot start", str(exc))
        return 2
    window.show()
    caught = close_on_signals(window)
    status = app.exec()
    collector.stop()
    return 128 + caught[0] if caught else status


def close_on_signals(window) -> list[int]:
    """Ctrl-C (SIGINT) or SIGTERM in the window's terminal closes the window as its close button
    does: a run stops after its step, with everything saved. Returns the list the caught
    signal lands in, for the exit status.

    Python runs signal handlers only between bytecodes, and Qt's event loop is C++, so the
    signal's byte is written to a socket (`set_wakeup_fd`) that a QSocketNotifier watches: the
    handler then runs at once, on the GUI thread, without polling.
    """
    import os
    import signal
    import socket

    from PySide6.QtCore import QSocketNotifier

    caught: list[int] = []
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Read, window)

    def drain() -> None:
        try:
            reader.recv(64)
        except OSError:
            pass

    def on_signal(signum, frame) -> None:
        if caught:               # a second Ctrl-C while the run winds down: go now
            os._exit(128 + signum)
        caught.append(signum)
        window.close()

    notifier.activated.connect(drain)
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)
    # the sockets live as long as the notifier, a child of the window, and close with it
    notifier.destroyed.connect(lambda *_: (reader.close(), writer.close()))
    return caught


def install_crash_dialog() -> None:
    """An unexpected error in a slot shows a dialog with the traceback instead of vanishing into
    the terminal (or, in some PySide versions, aborting the app)."""
    import traceback

    from PySide6.QtWidgets import QApplication, QMessageBox

    previous = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):   # never "please report this" for Ctrl-C
            app = QApplication.instance()
            if app is not None:
                app.quit()
            return
        previous(kind, value, tb)
        if QApplication.instance() is None:
            return
        box = QMessageBox(QMessageBox.Critical, "Unexpected error",
                          f"{kind.__name__}: {value}\n\nYour runs and rankings are saved. "
                          "Please report this with the details below.")
        box.setDetailedText("".join(traceback.format_exception(kind, value, tb)))
        box.exec()

    sys.excepthook = hook


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from explorer.cli.commands import configure_logging
    from explorer.cli.errors import run_command

    configure_logging(args.verbose)
    func = getattr(args, "func", None)
    if args.command is not None:
        if func is None:
            parser.error(f"command {args.command!r} has no handler")
        return run_command(func, args)
    return run_gui(args)


if __name__ == "__main__":
    raise SystemExit(main())
