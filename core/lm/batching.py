"""Text -> tensors the way every part of the loop lays them out.

A row is [BOS] + prompt, LEFT-padded so all prompts end at the same column P, then the completion
(+ EOS) RIGHT-padded: the model continues every prompt at the same position, and completion-aligned
tensors are simply [:, P:].
"""

from __future__ import annotations

import torch

from core.lm.tokenizer import TOKENIZER


def encode_prompts(prompts: list[str], device=None, tok=TOKENIZER):
    """-> (ids [B, P] long, mask [B, P] float), left-padded, each row starting with BOS."""
    rows = [[tok.bos_id] + tok.encode(p) for p in prompts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tok.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width))
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1.0
    return ids.to(device), mask.to(device)


def encode_pairs(prompts: list[str], completions: list[str], max_new_tokens: int, device=None,
                 tok=TOKENIZER):
    """Prompt + completion rows -> (ids [B, P+T], mask [B, P+T], P). Completions end with EOS
    unless they fill max_new_tokens (as a truncated sample would)."""
    ids_p, mask_p = encode_prompts(prompts, device, tok)
    comp = [(tok.encode(c) + [tok.eos_id])[:max_new_tokens] for c in completions]
    width = max(1, max(len(c) for c in comp))
    ids_c = torch.full((len(comp), width), tok.pad_id, dtype=torch.long)
    mask_c = torch.zeros((len(comp), width))
    for i, c in enumerate(comp):
        ids_c[i, :len(c)] = torch.tensor(c, dtype=torch.long)
        mask_c[i, :len(c)] = 1.0
    ids = torch.cat([ids_p, ids_c.to(ids_p.device)], dim=1)
    mask = torch.cat([mask_p, mask_c.to(mask_p.device)], dim=1)
    return ids, mask, ids_p.shape[1]
