"""Live metric plots: a numpy data model, one panel widget, the dashboard that tiles them."""

from explorer.plots.dashboard import Dashboard
from explorer.plots.metric_plot import MetricPlot
from explorer.plots.series import MetricSeries, RunSeries, ema_debiased

__all__ = ["Dashboard", "MetricPlot", "MetricSeries", "RunSeries", "ema_debiased"]
