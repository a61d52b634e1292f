"""The plots' data model: growing per-metric buffers and the debiased EMA. Pure numpy, no Qt.

Every point a run reports is kept; only drawing decimates (TensorBoard and W&B sample curves
down, which hides the spikes a person most needs to see; docs/design.md). The buffers are
filled on the GUI thread only, from the slot that receives the worker's metrics, so they need
no locking.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Metrics that are the x axis, not something to plot against it.
X_KEYS = ("step", "time_s")


class GrowingBuffer:
    """A float64 array that grows by doubling, so n appends cost amortised O(n) copies."""

    __slots__ = ("_data", "_n")

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(max(1, int(capacity)), dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        return self._data.size

    def _reserve(self, n: int) -> None:
        if n > self._data.size:
            size = self._data.size
            while size < n:
                size *= 2
            grown = np.empty(size, dtype=np.float64)
            grown[: self._n] = self._data[: self._n]
            self._data = grown

    def append(self, value: float) -> None:
        self._reserve(self._n + 1)
        self._data[self._n] = value
        self._n += 1

    def extend(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        self._reserve(self._n + values.size)
        self._data[self._n : self._n + values.size] = values
        self._n += values.size

    def clear(self) -> None:
        self._n = 0

    @property
    def view(self) -> np.ndarray:
        """The filled part, without a copy; read-only so a caller cannot corrupt the buffer.

        A later append may reallocate, so callers must not keep the view across appends.
        """
        out = self._data[: self._n]
        out.flags.writeable = False
        return out


class MetricSeries:
    """(step, time_s, value) points of one metric of one run.

    Non-finite values are stored like any other point (they count, and the CSV export lists
    them) and are left out only when a line is drawn.
    """

    __slots__ = ("name", "_steps", "_times", "_values", "version", "n_nonfinite",
                 "n_nonfinite_times")

    def __init__(self, name: str, capacity: int = 1024) -> None:
        self.name = name
        self._steps = GrowingBuffer(capacity)
        self._times = GrowingBuffer(capacity)
        self._values = GrowingBuffer(capacity)
        # Bumped on every append; plots compare it with what they drew last to skip setData.
        self.version = 0
        self.n_nonfinite = 0
        self.n_nonfinite_times = 0  # a source without a clock reports NaN time

    def __len__(self) -> int:
        return len(self._values)

    @property
    def capacity(self) -> int:
        return self._values.capacity

    def append(self, step: float, time_s: float, value: float) -> None:
        self._steps.append(step)
        self._times.append(time_s)
        self._values.append(value)
        if not math.isfinite(value):
            self.n_nonfinite += 1
        if not math.isfinite(time_s):
            self.n_nonfinite_times += 1
        self.version += 1

    @property
    def steps(self) -> np.ndarray:
        return self._steps.view

    @property
    def times(self) -> np.ndarray:
        return self._times.view

    @property
    def values(self) -> np.ndarray:
        return self._values.view


def _as_float(value: Any) -> float | None:
    # Strings and other non-numbers in a metrics dict (a phase name, say) are not curves.
    if isinstance(value, str | bytes):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class RunSeries:
    """All metrics of one run, as reported step by step, plus its mid-run edit events."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._series: dict[str, MetricSeries] = {}
        self.events: list[tuple[float, float, str]] = []
        self.n_steps = 0
        self.last_step = math.nan
        self.last_time_s = math.nan
        # Bumped on every append and event, so a redraw timer can skip an unchanged run.
        self.version = 0

    def append(self, metrics: Mapping[str, Any]) -> None:
        """Add one step's metrics dict (keys as in docs/metrics.md; `step` and `time_s` are x)."""
        step = _as_float(metrics.get("step"))
        if step is None or not math.isfinite(step):
            # A source without step numbers still gets a usable x axis: the report's index.
            step = float(self.n_steps)
        time_s = _as_float(metrics.get("time_s"))
        if time_s is None:
            time_s = math.nan
        for name, raw in metrics.items():
            if name == "step":
                continue
            value = _as_float(raw)
            if value is None:
                continue
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = MetricSeries(name, self._capacity)
            series.append(step, time_s, value)
        self.n_steps += 1
        self.last_step, self.last_time_s = step, time_s
        self.version += 1

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append many steps at once, e.g. a stored run being reloaded."""
        for row in rows:
            self.append(row)

    def add_event(self, label: str, step: float | None = None, time_s: float | None = None) -> None:
        """Record a marker (a mid-run edit, say); defaults to the latest step reported."""
        step = self.last_step if step is None else float(step)
        time_s = self.last_time_s if time_s is None else float(time_s)
        self.events.append((step, time_s, label))
        self.version += 1

    def names(self) -> list[str]:
        """Metric names in the order they first appeared (`step` is the x axis, not a name)."""
        return list(self._series)

    def get(self, name: str) -> MetricSeries | None:
        return self._series.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._series


def ema_extend(
    values: np.ndarray, alpha: float, state: float = 0.0, count: int = 0
) -> tuple[np.ndarray, float, int]:
    """Continue a debiased EMA over `values` from (state, count); returns (out, state, count).

    `state` is the biased average s and `count` the number of finite values folded into it.
    Lets a plot smooth only the newly appended tail of a long series on each redraw.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    out = np.full(x.shape, np.nan)
    finite = np.isfinite(x)
    xs = x[finite]
    if alpha <= 0.0:
        out[finite] = xs
        return out, (float(xs[-1]) if xs.size else state), count + xs.size
    if not alpha < 1.0:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    # The recurrence s_k = a s_{k-1} + (1-a) x_k unrolls to
    #   s_k = a^(k+1) s_0 + (1-a) a^k cumsum(x_j a^-j),
    # which numpy evaluates in one pass. a^-j overflows for long blocks, so go in blocks short
    # enough that a^-block stays below 1e100 (cancellation error stays ~eps * |x|).
    block = int(min(4096, max(1, math.floor(100 * math.log(10) / -math.log(alpha)))))
    smooth = np.empty_like(xs)
    s = float(state)
    for start in range(0, xs.size, block):
        chunk = xs[start : start + block]
        k = np.arange(chunk.size, dtype=np.float64)
        a_k = alpha**k
        run = a_k * (alpha * s + (1.0 - alpha) * np.cumsum(chunk / a_k))
        smooth[start : start + chunk.size] = run
        s = float(run[-1])
    t = count + np.arange(1, xs.size + 1, dtype=np.float64)
    # Adam-style bias correction: s starts at 0, so early averages are divided by 1 - a^t.
    out[finite] = smooth / (1.0 - alpha**t)
    return out, s, count + xs.size


def ema_debiased(values: np.ndarray | Iterable[float], alpha: float) -> np.ndarray:
    """Debiased exponential moving average; alpha 0 returns the values unchanged.

    s_t = alpha * s_{t-1} + (1 - alpha) * x_t with s_0 = 0, reported as s_t / (1 - alpha^t), so
    the first values are not dragged toward 0 (TensorBoard's smoothing is). Non-finite values
    are skipped: their output is NaN and they do not advance t.
    """
    return ema_extend(np.asarray(values, dtype=np.float64), float(alpha))[0]


@dataclass
class IncrementalEma:
    """The debiased EMA of one growing series, kept up to date by smoothing only its new tail.

    A redraw of a 100k-point curve then costs a few new points, not a pass over all of them.
    """

    alpha: float = -1.0
    state: float = 0.0
    count: int = 0
    out: GrowingBuffer = field(default_factory=GrowingBuffer)

    def of(self, series: MetricSeries, alpha: float) -> np.ndarray:
        """The smoothed values of `series` (NaN where it is not finite), index-aligned."""
        if alpha != self.alpha or len(series) < len(self.out):
            self.alpha, self.state, self.count = alpha, 0.0, 0
            self.out.clear()
        if len(series) > len(self.out):
            tail, self.state, self.count = ema_extend(
                series.values[len(self.out) :], alpha, self.state, self.count
            )
            self.out.extend(tail)
        return self.out.view
