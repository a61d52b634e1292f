"""Small helpers shared by the math: shape checks that explain themselves, and masked means.

Every public function of the lecture's math validates its inputs here, so a mistake made by a caller
(mismatched shapes, a mask of the wrong size) is a ValueError that says what was expected instead of
a silent broadcast that averages the wrong things.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def as_tensor(x, name: str, like: Tensor | None = None) -> Tensor:
    """Accept tensors, numbers and sequences; return a float tensor (float32 unless `like` says)."""
    if isinstance(x, Tensor):
        return x if x.is_floating_point() else x.float()
    try:
        dtype = like.dtype if like is not None else torch.float32
        device = like.device if like is not None else None
        return torch.as_tensor(x, dtype=dtype, device=device)
    except (TypeError, ValueError) as exc:
        msg = f"{name} must be a tensor or a sequence of numbers, got {type(x)!r}"
        raise ValueError(msg) from exc


def check_same_shape(**tensors: Tensor) -> None:
    """Raise ValueError unless all given tensors share one shape (names appear in the message)."""
    items = list(tensors.items())
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.shape != first.shape:
            shapes = ", ".join(f"{n}{tuple(v.shape)}" for n, v in items)
            raise ValueError(
                f"{name} must have the same shape as {first_name}; got {shapes}"
            )


def check_mask(mask: Tensor | None, like: Tensor, name: str = "mask") -> Tensor | None:
    """Return `mask` as a float tensor of `like`'s shape, or None. 1 marks a real token."""
    if mask is None:
        return None
    mask = as_tensor(mask, name, like=like).to(like.dtype)
    if mask.shape != like.shape:
        raise ValueError(
            f"{name} must have the same shape as the values it masks, {tuple(like.shape)}; "
            f"got {tuple(mask.shape)}"
        )
    return mask


def masked_mean(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean over every element, or over the elements where mask is 1.

    Padding (mask 0) contributes nothing, whatever value it holds: the sum is taken of x*mask with
    non-finite padding replaced, so a NaN in a padded slot cannot leak in. An all-zero mask gives 0,
    not NaN, because an empty batch should not poison a running metric.
    """
    if mask is None:
        return x.mean()
    mask = check_mask(mask, x)
    kept = torch.where(mask > 0, x, torch.zeros_like(x))
    return (kept * mask).sum() / mask.sum().clamp_min(1.0)


def masked_var(x: Tensor, mask: Tensor | None = None, unbiased: bool = False) -> Tensor:
    """Variance over the (masked) elements; unbiased divides by n-1 (and gives 0 for n <= 1)."""
    mask = check_mask(mask, x)
    if mask is None:
        mask = torch.ones_like(x)
    n = mask.sum()
    mean = masked_mean(x, mask)
    sq = masked_mean((x - mean) ** 2, mask) * n
    denom = (n - 1.0) if unbiased else n
    return torch.where(denom > 0, sq / denom.clamp_min(1.0), torch.zeros_like(sq))


def whiten(x: Tensor, mask: Tensor | None = None, eps: float = 1e-8,
           rel_tol: float = 1e-6) -> Tensor:
    """(x - mean) / (std + eps) over the masked elements; padding stays 0.

    Values that are all equal (up to float rounding) whiten to exactly 0: their float32 mean can
    miss them by an ulp, and dividing that by a std of ~1e-8 plus eps gave -0.86 for a constant.
    """
    m = check_mask(mask, x)
    keep = torch.ones_like(x, dtype=torch.bool) if m is None else m > 0
    if not bool(keep.any()):
        return torch.zeros_like(x)
    real = x[keep]
    if float(real.max() - real.min()) <= rel_tol * max(1.0, float(real.abs().max())):
        return torch.zeros_like(x)
    mean = masked_mean(x, m)
    std = masked_var(x, m).sqrt()
    out = (x - mean) / (std + eps)
    return out if m is None else torch.where(keep, out, torch.zeros_like(out))
