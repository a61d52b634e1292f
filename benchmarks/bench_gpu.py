"""Everything about the CUDA path in one run: step time and tokens/s, default and 10x model.

    .venv/bin/python benchmarks/bench_gpu.py                # on a machine with a CUDA GPU
    .venv/bin/python benchmarks/bench_gpu.py --device cpu --steps 2 --warmup 1   # a smoke run

For each model (the shipped 4x128 sentiment base model, and a randomly initialised 8x320 GPT with
about 10x the parameters) and each precision (fp32; fp32 with TF32 matrix products; bf16 autocast
around the whole step), it runs the default GRPO step on equal work (64 completions of exactly 48
tokens, min_new_tokens = max_new_tokens) and prints the median step time, its split into sampling,
the reference pass and the update, tokens per second, and how far the sampler's log-probs drift
from the training pass's under that precision (what a ratio that should be 1 then carries). The
CUDA path is never part of the test suite: CI has no GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core.config import RunConfig  # noqa: E402
from core.lm.batching import encode_prompts  # noqa: E402
from core.lm.checkpoints import default_checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from core.lm.model import GPT, GPTConfig, sequence_logprobs  # noqa: E402
from core.lm.sampling import generate  # noqa: E402
from core.lm.tokenizer import TOKENIZER  # noqa: E402
from core.rl.trainer import Trainer  # noqa: E402

PRECISIONS = ("fp32", "tf32", "bf16")


def precision(name: str, device: str):
    """Context for one precision; TF32 is a global switch, set here for each precision."""
    torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
    torch.backends.cudnn.allow_tf32 = name == "tf32"
    if name == "bf16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def big_checkpoint(folder: Path) -> Path:
    """A 10x model (8 layers x 320 wide, 8 heads) with random weights: timing needs no training."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=TOKENIZER.vocab_size, n_layer=8, n_embd=320, n_head=8))
    path = folder / "big.safetensors"
    save_checkpoint(path, model, {"task": "sentiment", "note": "bench_gpu random init"})
    return path


def logprob_drift(trainer: Trainer, name: str, device: str) -> float:
    """Max |sampler log-prob - training pass log-prob| over one batch's real tokens."""
    prompts = trainer.task.sample_prompts(64, trainer.rng)
    ids, mask = encode_prompts(prompts, trainer.device)
    with precision(name, device), torch.no_grad():
        out = generate(trainer.policy, ids, mask, 48, eos_id=TOKENIZER.eos_id,
                       generator=trainer.generator)
        scored = sequence_logprobs(trainer.policy, torch.cat([ids, out.tokens], 1),
                                   torch.cat([mask, out.mask], 1), ids.shape[1]).logprobs
    real = out.mask.bool()
    return float((scored.float() - out.logprobs)[real].abs().max())


def measure(checkpoint: Path, name: str, args) -> dict:
    cfg = RunConfig.for_algo("grpo", device=args.device, checkpoint=str(checkpoint),
                             max_new_tokens=48, min_new_tokens=48, steps=100_000,
                             checkpoint_every=0, prompts_per_step=args.batch // 8)
    trainer = Trainer(cfg)
    rows = []
    for i in range(args.warmup + args.steps):
        with precision(name, args.device):
            if args.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            metrics = trainer.step().metrics
            if args.device == "cuda":
                torch.cuda.synchronize()
            metrics["wall_s"] = time.perf_counter() - t0
        if i >= args.warmup:
            rows.append(metrics)

    def med(key):
        return statistics.median(r[key] for r in rows)

    tokens = cfg.batch_size * 48
    return {"step_s": med("wall_s"), "sample_s": med("perf/sample_s"),
            "score_s": med("perf/score_s"), "update_s": med("perf/update_s"),
            "tokens_per_s": tokens / med("wall_s"), "params": trainer.policy.num_params(),
            "drift": logprob_drift(trainer, name, args.device)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64, help="completions per step (8 per prompt)")
    ap.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; use --device cpu for a smoke run")
    where = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"{where}, torch {torch.__version__}"
          f"{', CUDA ' + torch.version.cuda if args.device == 'cuda' else ''}; GRPO, "
          f"{args.batch} completions x 48 tokens, median of {args.steps} steps after "
          f"{args.warmup}\n")
    print("| model | params | precision | step ms | sampling ms | reference ms | update ms "
          "| tokens/s | max log-prob drift |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        models = (("4x128 (default)", default_checkpoint("sentiment")),
                  ("8x320 (10x)", big_checkpoint(Path(tmp))))
        for label, path in models:
            load_checkpoint(path)   # a bad file fails here, before any timing
            for name in args.precisions:
                r = measure(path, name, args)
                print(f"| {label} | {r['params'] / 1e6:.1f}M | {name} | {r['step_s'] * 1e3:.0f} "
                      f"| {r['sample_s'] * 1e3:.0f} | {r['score_s'] * 1e3:.0f} "
                      f"| {r['update_s'] * 1e3:.0f} | {r['tokens_per_s']:,.0f} "
                      f"| {r['drift']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
