"""A sweep's figure as SVG text: each config's mean over seeds, with its band, one colour each.

Written by hand so that a headless report needs no plotting library and no Qt; the window draws
the same bands live with pyqtgraph (explorer/panels/experiments.py) and exports its own.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

from core.sweeps.report import Band

# Okabe-Ito (as the window's plots; its yellow vanishes on white), then Tol's muted colours:
# told apart by colour-blind readers too
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
           "#882255", "#44AA99", "#332288", "#999933", "#7F7F7F")
W, H = 960, 520
LEFT, RIGHT, TOP, BOTTOM = 70, 310, 40, 50


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if step * m >= raw)
    start = math.ceil(lo / step) * step
    return [round(start + i * step, 10) for i in range(int((hi - start) / step) + 1)]


def svg(bands: list[Band], title: str, xlabel: str, ylabel: str, band: str = "sd") -> str:
    """The figure: mean lines, and around each a band of +- sd (band="sd") or min-max."""
    width, height = W - LEFT - RIGHT, H - TOP - BOTTOM
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{LEFT}" y="{TOP - 14}" font-size="15">{escape(title)}</text>']
    lows = [(b.mean - b.sd) if band == "sd" else b.lo for b in bands]
    highs = [(b.mean + b.sd) if band == "sd" else b.hi for b in bands]
    xs = np.concatenate([b.x for b in bands]) if bands else np.empty(0)
    ys = np.concatenate(lows + highs) if bands else np.empty(0)
    xs, ys = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
    if xs.size == 0 or ys.size == 0:
        parts.append(f'<text x="{LEFT + 20}" y="{TOP + 40}">no steps recorded yet</text></svg>')
        return "\n".join(parts)
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    if x1 <= x0:
        x1 = x0 + 1
    pad = 0.05 * (y1 - y0 or 1.0)
    y0, y1 = y0 - pad, y1 + pad

    def px(x):
        return LEFT + (x - x0) / (x1 - x0) * width

    def py(y):
        return TOP + (1 - (y - y0) / (y1 - y0)) * height

    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{width}" height="{height}" fill="none" '
                 'stroke="#444"/>')
    for t in _ticks(x0, x1):
        parts.append(f'<line x1="{px(t):.1f}" y1="{TOP + height}" x2="{px(t):.1f}" '
                     f'y2="{TOP + height + 5}" stroke="#444"/><text x="{px(t):.1f}" '
                     f'y="{TOP + height + 18}" text-anchor="middle">{t:g}</text>')
    for t in _ticks(y0, y1):
        parts.append(f'<line x1="{LEFT}" y1="{py(t):.1f}" x2="{LEFT + width}" y2="{py(t):.1f}" '
                     f'stroke="#eee"/><text x="{LEFT - 6}" y="{py(t) + 4:.1f}" '
                     f'text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{LEFT + width / 2}" y="{H - 12}" text-anchor="middle">'
                 f'{escape(xlabel)}</text>')
    parts.append(f'<text transform="translate(18 {TOP + height / 2}) rotate(-90)" '
                 f'text-anchor="middle">{escape(ylabel)}</text>')
    for i, (b, lo, hi) in enumerate(zip(bands, lows, highs, strict=True)):
        colour = COLOURS[i % len(COLOURS)]
        ok = np.isfinite(b.mean)
        if np.any(b.n > 1):
            upper = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(b.x[ok], hi[ok],
                                                                        strict=True))
            lower = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(b.x[ok][::-1],
                                                                        lo[ok][::-1],
                                                                        strict=True))
            parts.append(f'<polygon points="{upper} {lower}" fill="{colour}" '
                         'fill-opacity="0.15" stroke="none"/>')
        line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(b.x[ok], b.mean[ok],
                                                                   strict=True))
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" '
                     'stroke-width="2"/>')
        ly = TOP + 14 + 18 * i
        parts.append(f'<line x1="{W - RIGHT + 16}" y1="{ly - 4}" x2="{W - RIGHT + 36}" '
                     f'y2="{ly - 4}" stroke="{colour}" stroke-width="3"/>'
                     f'<text x="{W - RIGHT + 42}" y="{ly}">{escape(b.label)} '
                     f'(n={int(b.n.max())})</text>')
    note = "band: ± 1 sd over seeds" if band == "sd" else "band: min–max over seeds"
    parts.append(f'<text x="{W - RIGHT + 16}" y="{TOP + 14 + 18 * len(bands) + 8}" '
                 f'fill="#666">{note}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
