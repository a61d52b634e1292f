"""Pretraining the base model of a task: next-character prediction on the task's own corpus.

Each line is trained as its own sequence, [BOS] line [EOS] starting at position 0, exactly how RL
lays out a prompt, so the base model has seen every position a rollout will use. The result goes to
`assets/<task>.safetensors` and is what every RL run starts from.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from core.lm.model import GPT, GPTConfig
from core.lm.threads import resolve_threads
from core.lm.tokenizer import TOKENIZER
from core.tasks import get_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    task: str
    steps: int = 2000          # ~3 min on 2 CPU cores for the 4x128 model
    batch_size: int = 64
    lr: float = 1e-3           # small models tolerate a high peak; cosine decay to lr/30
    warmup: int = 100
    corpus_lines: int = 40_000
    seed: int = 0
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    threads: int = 0           # 0 = every core (core/lm/threads.py)


def _batch(lines: list[list[int]], idx: np.ndarray):
    rows = [[TOKENIZER.bos_id] + lines[i] + [TOKENIZER.eos_id] for i in idx]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), TOKENIZER.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width))
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1.0
    return ids, mask


def _loss(model: GPT, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    logits = model(ids, mask)[:, :-1]
    target, tmask = ids[:, 1:], mask[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                            target.reshape(-1), reduction="none")
    return (nll * tmask.reshape(-1)).sum() / tmask.sum()


def pretrain(cfg: PretrainConfig, device="cpu", progress=None) -> tuple[GPT, dict]:
    """Train a fresh GPT on the task's corpus. progress(step, steps, loss) is called every step."""
    task = get_task(cfg.task)
    torch.set_num_threads(resolve_threads(cfg.threads, beside_gui=False))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    lines = [TOKENIZER.encode(s) for s in task.corpus(cfg.corpus_lines, seed=cfg.seed)]
    n_val = max(64, len(lines) // 50)
    val, train = lines[:n_val], lines[n_val:]
    block = max(len(x) for x in lines) + 2
    gcfg = GPTConfig(vocab_size=TOKENIZER.vocab_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                     n_embd=cfg.n_embd, block_size=max(128, block))
    model = GPT(gcfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.95))
    t0 = time.perf_counter()
    loss = float("nan")
    for step in range(cfg.steps):
        warm = min(1.0, (step + 1) / cfg.warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = cfg.lr * warm * (1 / 30 + (1 - 1 / 30) * cosine)
        ids, mask = _batch(train, rng.integers(0, len(train), cfg.batch_size))
        out = _loss(model, ids.to(device), mask.to(device))
        opt.zero_grad(set_to_none=True)
        out.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss = out.item()   # float(out) warns: out still requires grad
        if progress:
            progress(step + 1, cfg.steps, loss)
    model.eval()
    with torch.no_grad():
        val_losses = [float(_loss(model, *(t.to(device) for t in _batch(val, np.arange(s, min(
            s + 128, len(val))))))) for s in range(0, len(val), 128)]
    meta = {"task": cfg.task, "steps": cfg.steps, "train_loss": loss,
            "val_loss": float(np.mean(val_losses)), "seconds": time.perf_counter() - t0,
            "corpus_lines": cfg.corpus_lines, "seed": cfg.seed}
    log.info("pretrained %s: %s", cfg.task, meta)
    return model, meta
