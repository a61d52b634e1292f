"""What a sweep's report and the Experiments tab compute from its trials' metrics.

- each config's final value (the mean of its last FINAL_WINDOW steps) as mean +- sd over seeds,
  its start, and the steps to a threshold (`summarise`);
- each config's band over seeds at each step (`curves`);
- over-optimisation's fit R(d) = d (alpha - beta log d) and its peak (`fit_gao`, `gao_peak`);
- each preset's "what this shows", written from the numbers measured, never in advance
  (`findings`).

Pure numpy on plain arrays: the store is read by the caller (core.sweeps.runner.trial_series).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from core.sweeps.spec import SweepSpec

# A trial's "final value" is the mean of its last FINAL_WINDOW steps: one step is noisy.
FINAL_WINDOW = 10


@dataclass(frozen=True)
class Series:
    """One trial's metric: steps (or the x the spec asks for) and values."""
    label: str
    seed: int
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class ConfigSummary:
    label: str
    n: int                   # seeds with at least one step
    final_mean: float
    final_sd: float          # over seeds (ddof 1); nan with one seed
    finals: tuple[float, ...]
    start_mean: float        # the mean of each seed's first FINAL_WINDOW steps, over seeds
    steps_to_threshold: float   # mean over the seeds that reached it; nan if none did
    reached: int


def final_value(y: np.ndarray) -> float:
    y = y[np.isfinite(y)]
    return float(y[-FINAL_WINDOW:].mean()) if y.size else math.nan


def start_value(y: np.ndarray) -> float:
    y = y[np.isfinite(y)]
    return float(y[:FINAL_WINDOW].mean()) if y.size else math.nan


def steps_to(x: np.ndarray, y: np.ndarray, threshold: float, window: int = 5) -> float:
    """The first step at which the mean of the last `window` values reaches `threshold`."""
    if y.size < window:
        return math.nan
    smooth = np.convolve(np.nan_to_num(y, nan=-np.inf), np.ones(window) / window, "valid")
    hit = np.flatnonzero(smooth >= threshold)
    return float(x[hit[0] + window - 1]) if hit.size else math.nan


def summarise(series: list[Series], threshold: float | None = None) -> list[ConfigSummary]:
    """Per config label (in first-seen order): the final value's mean and sd over seeds, and
    the steps to `threshold`."""
    out = []
    for label in dict.fromkeys(s.label for s in series):
        runs = [s for s in series if s.label == label and s.y.size]
        finals = [final_value(s.y) for s in runs]
        starts = [start_value(s.y) for s in runs]
        hits = [steps_to(s.x, s.y, threshold) for s in runs] if threshold is not None else []
        hits = [h for h in hits if math.isfinite(h)]
        out.append(ConfigSummary(
            label, len(runs), _mean(finals), _sd(finals), tuple(finals), _mean(starts),
            _mean(hits), len(hits)))
    return out


def _mean(values) -> float:
    values = [v for v in values if math.isfinite(v)]
    return float(np.mean(values)) if values else math.nan


def _sd(values) -> float:
    values = [v for v in values if math.isfinite(v)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


@dataclass(frozen=True)
class Band:
    """A config's mean over its seeds at each x, with sd and min-max around it."""
    label: str
    x: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n: np.ndarray     # seeds with a value at that x


def curves(series: list[Series]) -> list[Band]:
    """Each config's band over its seeds, on the union of their steps (a seed still running
    contributes the steps it has). For x = sqrt_kl, each seed is first put on a common grid."""
    out = []
    for label in dict.fromkeys(s.label for s in series):
        runs = [s for s in series if s.label == label and s.y.size]
        if not runs:
            continue
        xs = np.unique(np.concatenate([s.x for s in runs]))
        grid = np.full((len(runs), xs.size), np.nan)
        for i, s in enumerate(runs):
            grid[i, np.searchsorted(xs, s.x)] = s.y
        n = np.isfinite(grid).sum(axis=0)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # all-nan columns: n says so
            mean = np.nanmean(grid, axis=0)
            sd = np.where(n > 1, np.nanstd(grid, axis=0, ddof=1), 0.0)
            lo, hi = np.nanmin(grid, axis=0), np.nanmax(grid, axis=0)
        keep = n > 0
        out.append(Band(label, xs[keep], mean[keep], sd[keep], lo[keep], hi[keep], n[keep]))
    return out


def binned(x: np.ndarray, y: np.ndarray, bins: int = 12,
           edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, mean y in each) over `bins` equal-width bins of x, or over `edges`; empty
    bins are left out. For curves against sqrt(KL), whose x differs from seed to seed: bin every
    seed of a config on the same edges (`common_edges`) so that their means line up."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if edges is None:
        if x.size < 2:
            return x, y
        edges = np.linspace(x.min(), x.max(), bins + 1)
    which = np.clip(np.digitize(x, edges) - 1, 0, len(edges) - 2)
    keep = [b for b in range(len(edges) - 1) if np.any(which == b)]
    centres = (edges[:-1] + edges[1:]) / 2
    return centres[keep], np.array([y[which == b].mean() for b in keep])


def common_edges(series: list[Series], bins: int = 12) -> dict[str, np.ndarray]:
    """Per config label, bin edges spanning every seed's x."""
    out = {}
    for label in dict.fromkeys(s.label for s in series):
        xs = np.concatenate([s.x[np.isfinite(s.x)] for s in series if s.label == label])
        if xs.size:
            hi = xs.max() if xs.max() > xs.min() else xs.min() + 1.0
            out[label] = np.linspace(xs.min(), hi, bins + 1)
    return out


# --- over-optimisation: R(d) = d (alpha - beta log d), Gao et al. 2022's best-of-n/RL form

def fit_gao(d: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """Least-squares (alpha, beta) of R(d) = d (alpha - beta log d), d = sqrt(KL) > 0, and r
    the reward gained since the start. Linear in (alpha, beta): r = alpha d - beta d log d."""
    ok = np.isfinite(d) & np.isfinite(r) & (d > 1e-6)
    if ok.sum() < 3:
        return math.nan, math.nan
    d, r = d[ok], r[ok]
    a = np.stack([d, -d * np.log(d)], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(a, r, rcond=None)
    return float(alpha), float(beta)


def gao_peak(alpha: float, beta: float) -> float:
    """The d at which R(d) = d (alpha - beta log d) peaks: log d* = alpha / beta - 1 (beta > 0);
    inf when the fit still rises (beta <= 0)."""
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        return math.nan
    if beta <= 0:
        return math.inf
    return float(math.exp(min(alpha / beta - 1.0, 50.0)))


def _fmt(v: float, digits: int = 2) -> str:
    return "–" if not math.isfinite(v) else f"{v:+.{digits}f}"


def table_rows(summary: list[ConfigSummary], threshold: float | None) -> list[dict]:
    rows = []
    for s in summary:
        row = {"config": s.label, "seeds": s.n,
               "final (mean ± sd)": f"{_fmt(s.final_mean)}{_pm(s) or ' ± –'}",
               "start": _fmt(s.start_mean)}
        if threshold is not None:
            row[f"steps to {threshold:g}"] = (f"{s.steps_to_threshold:.0f} ({s.reached}/{s.n})"
                                              if s.reached else f"– (0/{s.n})")
        rows.append(row)
    return rows


def findings(spec: SweepSpec, summary: list[ConfigSummary],
             extra: dict | None = None) -> list[str]:
    """'What this shows', from the numbers: a few sentences per preset, none written in
    advance. `extra` carries what a preset measured beyond the summary (over-optimisation's
    fitted peaks)."""
    done = [s for s in summary if s.n and math.isfinite(s.final_mean)]
    if not done:
        return ["No trial has finished a step yet."]
    lines = []
    best = max(done, key=lambda s: s.final_mean)
    seeds, most = min(s.n for s in done), max(s.n for s in done)
    lines.append(f"Highest final {spec.metric}: {best.label} ({_fmt(best.final_mean)}"
                 f"{_pm(best)}), over {seeds if seeds == most else f'{seeds}–{most}'} seed"
                 f"{'s' if most > 1 else ''} per config.")
    if spec.preset == "kl-vs-clip":
        clip = [s for s in done if s.label.startswith("clip")]
        pen = [s for s in done if "KL" in s.label]
        if clip and pen:
            bc, bp = max(clip, key=lambda s: s.final_mean), max(pen, key=lambda s: s.final_mean)
            gap = bc.final_mean - bp.final_mean
            noise = _se(bc) + _se(bp)
            verdict = ("holds here" if gap > noise else "does not hold here" if gap < -noise
                       else f"is not resolved at {seeds} seeds (the gap is within the seeds' "
                            "noise)")
            lines.append(f"\"KL penalty works worse than CLIP\" {verdict}: the best clip "
                         f"({bc.label}, {_fmt(bc.final_mean)}) against the best penalty "
                         f"({bp.label}, {_fmt(bp.final_mean)}), a gap of {gap:+.2f} against "
                         f"a standard error of {noise:.2f}.")
        plain = next((s for s in done if s.label.startswith("no clip")), None)
        if plain is not None:
            short = best.final_mean - plain.final_mean
            how = "is the best" if short <= 1e-9 else f"falls {short:.2f} short of the best"
            lines.append(f"With neither clip nor penalty ({_fmt(plain.final_mean)}{_pm(plain)}) "
                         f"the surrogate {how}. Clip runs use PPO (a learned critic); "
                         "penalty runs use the lecture's KL-penalised objective (REINFORCE "
                         "advantages): a departure from the paper, "
                         "whose rows share one advantage estimator.")
    elif spec.preset == "rank-to-reward":
        gains = sorted(((s.final_mean - s.start_mean, s) for s in done), key=lambda t: -t[0])
        top = ", ".join(f"{s.label} {g:+.2f}" for g, s in gains[:3])
        lines.append(f"Gain in true reward over the run, every config given the same number of "
                     f"rankings: {top}.")
        rm = [t for t in gains if t[1].label.startswith("reward model")]
        ranks = [t for t in gains if t[1].label.startswith("ranks")]
        if rm and ranks:
            (g_rm, s_rm), (g_rk, s_rk) = rm[0], ranks[0]
            noise = _se(s_rm) + _se(s_rk)
            if abs(g_rm - g_rk) <= noise:
                lines.append(f"Per ranking given, the two routes are not told apart at {seeds} "
                             f"seeds: the best reward model ({s_rm.label}) gained {g_rm:+.2f}, "
                             f"the best direct conversion ({s_rk.label}) {g_rk:+.2f}, within "
                             f"the seeds' standard error of {noise:.2f}.")
            else:
                winner = "a reward model" if g_rm > g_rk else "ranks used directly as rewards"
                lines.append(f"Per ranking given, {winner} learned faster: the best reward "
                             f"model ({s_rm.label}) gained {g_rm:+.2f}, the best direct "
                             f"conversion ({s_rk.label}) {g_rk:+.2f} (standard error "
                             f"{noise:.2f}).")
    elif spec.preset == "overoptimisation" and extra:
        peaks = extra.get("peaks", {})
        for kind in ("plain", "robust"):
            rows = [(int(label.split()[0]), v) for label, v in peaks.items() if kind in label]
            rows.sort()
            if len(rows) >= 2:
                text = ", ".join(f"{n}: {('∞' if math.isinf(v) else f'{v:.2f}')}"
                                 for n, v in rows)
                finite = [v for _, v in rows]
                moves = all(b >= a for a, b in zip(finite, finite[1:], strict=False))
                seen = sorted((int(label.split()[0]), v) for label, v in
                              extra.get("seen", {}).items() if kind in label)
                where = (" (the highest binned gold reward sat at d = " +
                         ", ".join(f"{v:.2f}" for _, v in seen) + ")") if seen else ""
                lines.append(f"{kind.capitalize()} reward: the gold reward's fitted peak d* = "
                             f"√KL at {text} rankings{where}; the fitted peak "
                             f"{'moves out' if moves else 'does not move out steadily'} "
                             "as rankings grow.")
    elif spec.preset == "grpo-family":
        base = next((s for s in done if s.label == "grpo"), None)
        if base is not None:
            better = [s for s in done if s is not base and
                      s.final_mean - base.final_mean > _se(s) + _se(base)]
            lines.append("Beyond the seeds' noise above GRPO: "
                         + (", ".join(s.label for s in better) if better else "none") + ".")
    return lines


def _pm(s: ConfigSummary) -> str:
    return f" ± {s.final_sd:.2f}" if math.isfinite(s.final_sd) else ""


def _se(s: ConfigSummary) -> float:
    return s.final_sd / math.sqrt(s.n) if s.n > 1 and math.isfinite(s.final_sd) else 0.0
