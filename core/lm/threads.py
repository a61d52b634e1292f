"""How many torch threads a run uses when `threads` is 0 (auto), by machine and by context.

Measured on the project's 2-core machine (benchmarks/README.md, "The window costs the run"),
default GRPO step:

* headless, nothing else running: 2 threads beat 1 by 1.6x (0.269 against 0.425 s), so a run
  alone takes every core;
* in the window the GUI thread needs a core now and then. The passes (a few large operations)
  barely notice: +4-9%. The decode loop's many small parallel regions stall whenever the GUI
  takes one of their cores: sampling +63% and event-loop p99 75 ms with 2 threads. So beside the
  window the passes take every core and sampling all but one (p99 37.5 ms, 0.35 s a step against
  0.47 s with one thread everywhere).

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
    """`RunConfig.threads` as the trainer applies it to its passes: 0 = every core, in either
    context (`beside_gui` is taken so both counts are asked for the same way)."""
    return requested if requested > 0 else cpu_cores()


def describe(requested: int, beside_gui: bool) -> str:
    """The counts a run will use, for a benchmark's or a log's header: "2" or "2 (sampling 1)"."""
    passes, sampling = resolve_threads(requested, beside_gui), sampling_threads(requested,
                                                                                 beside_gui)
    return f"{passes}" if passes == sampling else f"{passes} (sampling {sampling})"


def sampling_threads(requested: int, beside_gui: bool) -> int:
    """Threads for the decode loop: `requested` when set, else every core headless and all but
    one beside the window."""
    return requested if requested > 0 else auto_threads(beside_gui)
