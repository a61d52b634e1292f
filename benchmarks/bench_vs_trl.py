"""Our GRPO step against TRL's GRPOTrainer on equal work, side by side, plus the FLOP limit.

    .venv/bin/python benchmarks/bench_vs_trl.py [--threads 2] [--rounds 6] [--block 3]

Equal work: 64 completions (8 prompts x 8) of exactly 48 tokens (min_new_tokens = max_new_tokens:
EOS cannot end one early), the same 4x128 GPT (our sentiment base model, copied into a Hugging Face
GPT-2), the task's true reward, beta 0.04 so both sides run a reference pass, one update per batch,
the same torch threads. TRL runs in its own virtual environment (built on first use in
benchmarks/.trl-venv: torch==2.13.0 first, so nothing pulls CUDA, then trl==1.16.0), in a child
process; the two sides take turns, `--block` steps each, and never run at once. Warm-up blocks are
dropped. Never part of the test suite (about 3 minutes; the first run adds the install).

It also prints the FLOP count of our step by phase, the machine's measured large-GEMM throughput at
the same thread count, and how far each phase is from that limit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VENV = ROOT / "benchmarks" / ".trl-venv"
TRL = "trl==1.16.0"

from core.config import RunConfig  # noqa: E402
from core.rl.trainer import Trainer  # noqa: E402


def trl_python() -> Path:
    """The TRL venv's interpreter, building the venv the first time (a few minutes)."""
    python = VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"building {VENV} (torch==2.13.0, then {TRL}); once", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)   # the CPU wheel, before anything asks
    subprocess.run([*pip, TRL, "torch==2.13.0"], check=True)
    return python


def gemm_peak(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of an n x n matrix product at this thread count."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def forward_flops(c, rows: int, queries: int, keys_before: int, head_rows: int) -> float:
    """Matrix-product FLOPs of a forward pass over `queries` new tokens per row, each attending to
    the keys before it (`keys_before` of them already cached) and itself (causal: only what a
    token may see is counted), with the tied head on `head_rows` tokens in all."""
    C, L = c.n_embd, c.n_layer
    tokens = rows * queries
    dense = 24 * C * C * L * tokens   # qkv 6C^2, projection 2C^2, MLP 16C^2 per layer and token
    keys = rows * sum(keys_before + i + 1 for i in range(queries))
    attention = 4 * C * L * keys      # q.k and p.v
    return dense + attention + 2 * C * c.vocab_size * head_rows


def step_flops(c, rows: int, prompt: int, new: int) -> dict[str, float]:
    """Our default GRPO step (one update, beta > 0, sampler's log-probs reused) by phase."""
    seq = forward_flops(c, rows, prompt + new, 0, rows * new)
    sample = forward_flops(c, rows, prompt, 0, rows) + sum(
        forward_flops(c, rows, 1, prompt + t, rows) for t in range(new - 1))
    return {"sampling": sample, "reference/old log-probs": seq, "update": 3 * seq}


class Child:
    """TRL's side: a process that runs `block` steps whenever it is told to."""

    def __init__(self, python: Path, args, model_dir: Path):
        cmd = [str(python), str(ROOT / "benchmarks" / "trl_side.py"), "--model", str(model_dir),
               "--threads", str(args.threads), "--block", str(args.block),
               "--steps", str(args.block * (args.rounds + args.warmup))]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL if not args.verbose else None,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.info = self._read()

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError("TRL's side ended early; rerun with --verbose to see why")

    def block(self) -> list[float]:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return self._read()["step_s"]

    def close(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6, help="timed turns per side")
    ap.add_argument("--block", type=int, default=3, help="steps per turn")
    ap.add_argument("--warmup", type=int, default=1, help="untimed turns per side first")
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--verbose", action="store_true", help="show TRL's output")
    args = ap.parse_args()

    python = trl_python()
    cfg = RunConfig.for_algo("grpo", threads=args.threads, max_new_tokens=args.tokens,
                             min_new_tokens=args.tokens, steps=100_000, checkpoint_every=0)
    ours = Trainer(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        trl = Child(python, args, Path(tmp) / "gpt2")
        theirs, mine = [], []
        try:
            for turn in range(args.warmup + args.rounds):
                timed = turn >= args.warmup
                # Alternate who goes first, so neither always runs on a warmer machine.
                for side in (("trl", "ours") if turn % 2 else ("ours", "trl")):
                    if side == "trl":
                        times = trl.block()
                        theirs += times if timed else []
                    else:
                        rows = [ours.step().metrics for _ in range(args.block)]
                        mine += rows if timed else []
        finally:
            trl.close()

    def med(key):
        return statistics.median(r[key] for r in mine)

    step, trl_step = med("perf/step_s"), statistics.median(theirs)
    length = min(r["completions/mean_length"] for r in mine)
    assert length == args.tokens, f"completions were {length} tokens, not {args.tokens}"
    c, rows = ours.policy.config, cfg.batch_size
    # The prompts' padded width varies by batch; the FLOP count takes the typical one.
    flops = step_flops(c, rows, _prompt_width(ours, cfg), args.tokens)
    peak = gemm_peak(args.threads)
    phases = {"sampling": med("perf/sample_s"), "reference/old log-probs": med("perf/score_s"),
              "update": med("perf/update_s")}

    print(f"\nEqual work: {rows} completions x {args.tokens} tokens, "
          f"{c.n_layer}x{c.n_embd} GPT ({ours.policy.num_params():,} params), "
          f"{args.threads} torch threads, {len(mine)} steps a side, alternating turns of "
          f"{args.block}. TRL {trl.info['trl']}, transformers {trl.info['transformers']}, "
          f"torch {trl.info['torch']}.\n")
    print("| side | step s (median) | tokens/s | vs TRL |")
    print("|---|---|---|---|")
    tokens = rows * args.tokens
    print(f"| TRL GRPOTrainer | {trl_step:.3f} | {tokens / trl_step:,.0f} | 1.00x |")
    print(f"| ours (GRPO defaults) | {step:.3f} | {tokens / step:,.0f} | "
          f"**{trl_step / step:.2f}x** faster |")
    total = sum(flops.values())
    print(f"\nLarge-GEMM peak: {peak:.0f} GFLOP/s fp32 at {args.threads} threads. Our step: "
          f"{total / 1e9:.1f} GFLOP, so {total / peak / 1e9 * 1e3:.0f} ms at that peak.\n")
    print("| phase | GFLOP | limit ms | measured ms | x limit |")
    print("|---|---|---|---|---|")
    for name, f in flops.items():
        limit = f / peak / 1e9
        print(f"| {name} | {f / 1e9:.1f} | {limit * 1e3:.0f} | {phases[name] * 1e3:.0f} | "
              f"{phases[name] / limit:.1f} |")
    other = statistics.median(r["perf/step_s"] - r["perf/sample_s"] - r["perf/score_s"]
                              - r["perf/update_s"] for r in mine)
    print(f"| reward and bookkeeping | – | – | {other * 1e3:.0f} | – |")
    print(f"| **whole step** | {total / 1e9:.1f} | {total / peak / 1e6:.0f} | {step * 1e3:.0f} | "
          f"**{step / (total / peak / 1e9):.1f}** |")


def _prompt_width(trainer: Trainer, cfg: RunConfig, batches: int = 20) -> int:
    """Median padded prompt width of this task's batches (BOS included)."""
    import numpy as np

    from core.lm.batching import encode_prompts

    rng = np.random.default_rng(0)
    widths = [encode_prompts(trainer.task.sample_prompts(cfg.prompts_per_step, rng))[0].shape[1]
              for _ in range(batches)]
    return int(statistics.median(widths))


if __name__ == "__main__":
    main()
