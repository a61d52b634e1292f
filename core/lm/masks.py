"""Masks for LEFT-padded batches, shared by the model, the sampler and the grouped passes.

A row is left-padded prompt then completion; `mask` is 1 for real tokens. Positions count real
tokens only, and no real query attends to a pad key.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def as_token_mask(mask: Tensor, like: Tensor, name: str) -> Tensor:
    """Return `mask` as bool with `like`'s [B,T] shape (1/True = real token)."""
    if mask.shape != like.shape:
        raise ValueError(
            f"{name} must have the same shape as the token ids {tuple(like.shape)}, "
            f"got {tuple(mask.shape)}"
        )
    return mask.to(device=like.device) != 0


def position_ids(mask: Tensor) -> Tensor:
    """Positions that ignore left padding: the first real token of every row is position 0.

    cumsum(mask) - 1 counts real tokens before (and including) each slot; pads before the first
    real token would get -1 and are clamped to 0 (their outputs are never used).
    """
    return (mask.long().cumsum(dim=1) - 1).clamp_min(0)


def query_key_mask(key_mask: Tensor, n_query: int) -> Tensor:
    """Boolean [B,1,Tq,Tk] mask for SDPA (True = may attend), the queries being the LAST n_query
    of the Tk keys: causal AND key is real. Every query may also attend to itself, so a pad query
    (whose row would otherwise be all False -> softmax over nothing -> NaN) stays finite; for a real
    query the diagonal is allowed anyway, so real outputs are unchanged.
    """
    n_key = key_mask.shape[1]
    offset = n_key - n_query
    q_idx = torch.arange(offset, n_key, device=key_mask.device)[:, None]
    k_idx = torch.arange(n_key, device=key_mask.device)[None, :]
    causal = k_idx <= q_idx  # [Tq,Tk]
    allowed = causal[None] & key_mask[:, None, :]  # [B,Tq,Tk]
    allowed = allowed | (k_idx == q_idx)[None]
    return allowed[:, None]  # [B,1,Tq,Tk], broadcast over heads
