"""The y range a panel auto-scales to: readable around a constant, inside a metric's bounds."""

from __future__ import annotations

import math

import pyqtgraph as pg

# A span below this share of the values needs five or more significant digits per tick
# label (0.04000, 0.04001, …): read it as a constant instead.
NEAR_CONSTANT = 1e-3
CONSTANT_PAD = 0.1  # a constant is shown ±10%: ticks 0.036, 0.04, 0.044
ZERO_PAD = 0.5  # ±10% of 0 is nothing; a constant 0 (GRPO's loss) gets a unit span instead
NEAR_ZERO = 1e-12
# The same rules in log view coordinates (decades): a ratio of 1.001, and ±10%.
LOG_NEAR_CONSTANT = math.log10(1 + NEAR_CONSTANT)
LOG_PAD = math.log10(1 + CONSTANT_PAD)
UNBOUNDED = 1e307

Bounds = tuple[float | None, float | None]


def readable_y_range(lo: float, hi: float, *, log: bool = False) -> tuple[float, float]:
    """Widen a (near-)constant data range to a span whose ticks read well; else unchanged.

    Left alone, pyqtgraph keeps the previous view's span around a constant (0.04 drawn on
    -0.46..0.54) or zooms into float noise (ticks 0.040015).
    """
    mid = (lo + hi) / 2
    if log:
        return (mid - LOG_PAD, mid + LOG_PAD) if hi - lo < LOG_NEAR_CONSTANT else (lo, hi)
    magnitude = max(abs(lo), abs(hi))
    if magnitude <= NEAR_ZERO:
        return mid - ZERO_PAD, mid + ZERO_PAD
    if hi - lo < NEAR_CONSTANT * magnitude:
        pad = CONSTANT_PAD * abs(mid)
        return mid - pad, mid + pad
    return lo, hi


def view_limits(bounds: Bounds, *, log: bool = False) -> Bounds:
    """A metric's value bounds as view limits; in log mode the view is in decades."""
    if not log:
        return bounds
    lo, hi = bounds
    return (math.log10(lo) if lo is not None and lo > 0 else None,
            math.log10(hi) if hi is not None and hi > 0 else None)


class ReadableViewBox(pg.ViewBox):
    """A ViewBox whose auto range reads well: constants padded, bounded metrics kept inside.

    Padding the children's bounds (rather than setting ranges by hand) keeps pyqtgraph's own
    auto range, its "View all" action and the export's autoRange working unchanged.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._y_bounds: Bounds = (None, None)

    @property
    def log_y(self) -> bool:
        return bool(self.state["logMode"][1])

    def set_y_bounds(self, lo: float | None = None, hi: float | None = None) -> None:
        """Never show y outside [lo, hi] (None: unbounded), e.g. (0, 1) for a fraction."""
        self._y_bounds = (lo, hi)
        self._apply_bounds()

    @property
    def y_bounds(self) -> Bounds:
        return self._y_bounds

    def setLogMode(self, axis, logMode) -> None:  # noqa: N802 (pyqtgraph override)
        super().setLogMode(axis, logMode)
        if axis == "y":
            self._apply_bounds()

    def _apply_bounds(self) -> None:
        y_min, y_max = view_limits(self._y_bounds, log=self.log_y)
        # pyqtgraph's own "no limit" (None breaks its log-mode clamping).
        self.setLimits(yMin=-UNBOUNDED if y_min is None else y_min,
                       yMax=UNBOUNDED if y_max is None else y_max)

    def childrenBounds(self, frac=None, orthoRange=(None, None), items=None):  # noqa: N802
        bounds = super().childrenBounds(frac=frac, orthoRange=orthoRange, items=items)
        if bounds[1] is not None:
            bounds[1] = list(readable_y_range(*bounds[1], log=self.log_y))
        return bounds

    def limit_zoom(self) -> None:
        """Stop a mouse zoom short of float noise: never closer than 0.1% of the values."""
        y = super().childrenBounds()[1]
        magnitude = max(abs(y[0]), abs(y[1])) if y is not None else 0.0
        floor = 1e-3 if self.log_y else max(magnitude * NEAR_CONSTANT, 1e-9)
        self.setLimits(minYRange=floor)
