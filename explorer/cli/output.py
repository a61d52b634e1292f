"""What the CLI commands share besides their results: the progress line on stderr, aligned
tables, the store a command opens and the `--data-dir` its messages repeat."""

from __future__ import annotations

import math
import sys
import time


class ProgressLine:
    """One status line on stderr: a bar when it is a terminal, a line every 5 s otherwise.
    Rate and ETA count from `start()` (the first step), so set-up time does not skew them."""

    def __init__(self, total: int, stream=None, first: int = 0):
        # looked up now, not at import: a redirected stderr (pytest, a wrapper) is the one used
        stream = stream or sys.stderr
        self.total, self.stream, self.t0 = total, stream, time.perf_counter()
        self.first = first           # steps already done before this process (a resume)
        self.tty = stream.isatty()
        self._last_print = 0.0

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def phase(self, name: str, done: int, total: int) -> None:
        self._emit(f"{name}: {done}/{total}", force=done == total)

    def update(self, step: int, metrics: dict) -> None:
        done = step + 1
        elapsed = time.perf_counter() - self.t0
        rate = (done - self.first) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else math.inf
        width = 24
        fill = int(width * done / self.total)
        bar = "█" * fill + "·" * (width - fill)
        eta_s = time.strftime("%M:%S", time.gmtime(eta)) if math.isfinite(eta) else "--:--"
        self._emit(f"step {done}/{self.total} {bar} {rate:.2f} steps/s ETA {eta_s}  "
                   f"reward {metrics.get('reward/mean', math.nan):+.3f}  "
                   f"true {metrics.get('reward/true_mean', math.nan):+.3f}  "
                   f"KL {metrics.get('kl/mean', math.nan):.3f}  "
                   f"β {metrics.get('kl/beta', math.nan):.3g}", force=done == self.total)

    def _emit(self, text: str, force: bool = False) -> None:
        now = time.perf_counter()
        if self.tty:
            self.stream.write("\r\033[K" + text)
            if force:
                self.stream.write("\n")
        elif force or now - self._last_print >= 5.0:
            self.stream.write(text + "\n")
            self._last_print = now
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def print_table(rows: list[dict], cols: list[str]) -> None:
    """Left-aligned columns, a header line first (`runs`, `rankings list`)."""
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))


def open_store(args, read_only: bool = False):
    """The run store of `--data-dir` (or the default); read-only commands never write."""
    from core.storage import resolve_data_dir
    from core.store.runs import RunStore

    return RunStore(resolve_data_dir(getattr(args, "data_dir", None), create=not read_only),
                    read_only=read_only)


def data_dir_flag(args) -> str:
    """` --data-dir DIR` when one was given, for the commands a message suggests."""
    import shlex

    value = getattr(args, "data_dir", None)
    return f" --data-dir {shlex.quote(str(value))}" if value else ""
