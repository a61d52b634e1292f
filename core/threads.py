"""How many torch threads a run uses when `threads` is 0 (auto), by machine and by context.

Measured on the project's 2-core machine (benchmarks/README.md, "Threads"), default GRPO step:

* headless, nothing else running: 2 threads beat 1 by about 1.4x, so a run alone takes every core;
* in the window, the GUI thread needs a core of its own: with a torch thread on every core, the
  busy-waiting OpenMP workers and the GUI's redraws time-share the cores, and events wait behind
  them (event-loop p99 84 ms at 2 threads against 50 ms at 1, issue 10), while the steps gained
  little. So beside the window a run leaves one core free.

A number set by hand always wins; these are only the defaults.
"""

from __future__ import annotations

import os


def cpu_cores() -> int:
    """Cores this process may run on (a container's or `taskset`'s limit, not the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):   # not on Linux
        return max(1, os.cpu_count() or 1)


def auto_threads(beside_gui: bool, cores: int | None = None) -> int:
    """Every core headless, all but one beside the window."""
    cores = cpu_cores() if cores is None else cores
    return max(1, cores - 1) if beside_gui else cores


def resolve_threads(requested: int, beside_gui: bool) -> int:
    """`RunConfig.threads` as the trainer applies it to its passes: 0 = every core."""
    return requested if requested > 0 else cpu_cores()


def sampling_threads(requested: int, beside_gui: bool) -> int:
    """Threads for the decode loop: `requested` when set, else every core headless and all but
    one beside the window."""
    return requested if requested > 0 else auto_threads(beside_gui)
