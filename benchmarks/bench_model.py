"""Throughput of sampling (core/lm/sampling.py, KV cache vs none) and one update (core/lm/model.py).

    .venv/bin/python benchmarks/bench_model.py [--threads 2] [--repeats 7]

Prints a small table. Times are medians (and bests) over --repeats runs after one warm-up. Another
busy process on the same cores slows two torch threads several times: run it on a quiet machine.
Sampling times include the prompt pass (64 left-padded prompts of up to 16 tokens).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.lm.model import GPT, GPTConfig, sequence_logprobs  # noqa: E402
from core.lm.sampling import generate  # noqa: E402


@torch.no_grad()
def generate_without_cache(model: GPT, ids: torch.Tensor, mask: torch.Tensor, n: int,
                           generator: torch.Generator) -> torch.Tensor:
    """Reference loop: rerun the full forward on the growing sequence for every new token."""
    for _ in range(n):
        logits = model(ids, attention_mask=mask)[:, -1]
        tok = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)
        ids = torch.cat([ids, tok], 1)
        mask = torch.cat([mask, torch.ones_like(tok)], 1)
    return ids


def left_padded_prompts(batch: int, width: int, vocab: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (batch, width), generator=g)
    lengths = torch.randint(1, width + 1, (batch,), generator=g)
    mask = (torch.arange(width)[None] >= (width - lengths)[:, None]).long()
    return ids * mask, mask


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median, best) seconds over `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def fmt(seconds: tuple[float, float], tokens: int | None = None) -> str:
    med, best = seconds
    text = f"{med * 1e3:8.1f} ms (best {best * 1e3:6.1f})"
    if tokens is not None:
        text += f"  {tokens / med:7.0f} tok/s (best {tokens / best:6.0f})"
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads (2 = the laptop kind)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--vocab", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--update-len", type=int, default=64, help="sequence length of the update")
    ap.add_argument("--no-uncached", action="store_true", help="skip the slow no-cache loop")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=args.vocab))
    B, P, T = args.batch, args.prompt_len, args.new_tokens
    ids, mask = left_padded_prompts(B, P, args.vocab)
    rows: list[tuple[str, str]] = []

    def cached():
        generate(model, ids, mask, T, generator=torch.Generator().manual_seed(0))

    s = timed(cached, args.repeats)
    rows.append((f"sample {B}x{T} KV cache", fmt(s, B * T)))

    if not args.no_uncached:
        def uncached():
            generate_without_cache(model.eval(), ids, mask, T, torch.Generator().manual_seed(0))

        s = timed(uncached, max(1, args.repeats // 2))
        rows.append((f"sample {B}x{T} no cache", fmt(s, B * T)))

    L = args.update_len
    upd_ids, upd_mask = left_padded_prompts(B, L, args.vocab, seed=1)
    upd_mask[:, L // 2 :] = 1  # left-padded prompt, full completion
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def update():
        logp, ent, _ = sequence_logprobs(model, upd_ids, upd_mask, L // 2, return_entropy=True)
        loss = -(logp * upd_mask[:, L // 2 :]).mean() - 0.01 * ent.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()

    s = timed(update, args.repeats)
    rows.append((f"sequence_logprobs fwd+bwd {B}x{L}", fmt(s)))

    def update_step():
        update()
        opt.step()

    s = timed(update_step, args.repeats)
    rows.append(("  + AdamW step", fmt(s)))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{model.num_params():,} params (vocab {args.vocab}, 4x128)")
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
