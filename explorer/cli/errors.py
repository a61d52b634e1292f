"""How the CLI fails: one line on stderr and a status, never a traceback.

* exit 2: bad input (a value, a file, a folder, a database, a closed pipe). The line names what is
  wrong and, where there is one, the fix.
* exit 1: a bug. One line too, with `--verbose` for the traceback.
* exit 128 + signal: a training run stopped by Ctrl-C (130) or SIGTERM (143) after saving
  (cmd_train); 3: it diverged (a NaN or inf); 0: it finished.

Argument errors from argparse get the same one-line form (`OneLineParser`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys

log = logging.getLogger(__name__)


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse's errors without the usage block: `PROG: error: ...; see PROG --help`."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def one_line(text: object, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _say(command: str, message: str) -> None:
    try:
        print(f"rlhf-explorer {command}: error: {one_line(message)}", file=sys.stderr)
        sys.stderr.flush()
    except (BrokenPipeError, OSError):   # stderr is the closed pipe too (`2>&1 | head`)
        pass


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush cannot
    raise again ("Exception ignored ... BrokenPipeError")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run_command(func, args: argparse.Namespace) -> int:
    """Run a sub-command's handler and turn every failure into one line and a status."""
    command = " ".join(filter(None, (getattr(args, "command", None),
                                     getattr(args, "action", None))))
    try:
        status = int(func(args) or 0)
        sys.stdout.flush()   # a closed pipe shows here rather than at exit
        return status
    except BrokenPipeError:
        _quiet_stdout()
        _say(command, "the output was closed before the end (e.g. by `| head`); nothing "
                      "was changed")
        return 2
    except (ValueError, UsageError) as exc:
        _say(command, str(exc))
    except sqlite3.Error as exc:   # a read that met a damaged page, say
        _say(command, f"a database in the data folder failed ({exc}); if this repeats, move "
                      "runs.db or rankings.db aside, or restore it from a backup")
    except OSError as exc:
        from core.storage import describe

        where = f" {exc.filename}" if exc.filename else ""
        _say(command, f"{describe(exc)}:{where}" if where else describe(exc))
    except KeyboardInterrupt:
        _say(command, "interrupted")
        return 130
    except RecursionError:
        _say(command, "input nested too deeply")
    except Exception as exc:   # a bug: one line, the traceback with --verbose
        if getattr(args, "verbose", False):
            raise
        log.debug("internal error", exc_info=True)
        _say(command, f"internal error ({type(exc).__name__}: {exc}); run again with "
                      "`rlhf-explorer --verbose ...` for the traceback and please report it")
        return 1
    return 2
