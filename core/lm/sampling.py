"""Batched sampling from a `core.lm.model.GPT`: the rollout's decode loop, written for speed.

`generate(model, prompt_ids, prompt_mask, max_new_tokens, ...)` returns a `SampleOutput`: the
sampled tokens, the log-prob of each under the policy, and a completion mask.

Why it is its own module, and not `GPT.forward` called once per token: a decode step works on a
batch of single tokens ([B, C] = [64, 128] by default), so its matrix products take tens of
microseconds and the per-operation cost of Python and torch's dispatcher is as large as the
arithmetic (issue 10 measured the loop at about 7x its FLOP limit; the update ran at 2x). The
step below therefore:

* calls the functional ops on the model's own weights (no `nn.Module.__call__` per layer), on 2-D
  [B, C] activations;
* attends the one new query with three batched products over the cache (`baddbmm`, softmax,
  `bmm`), with key padding as an additive bias built once per batch: the fused SDPA kernel spends
  ~185 us per call on a single query, the products ~110 us;
* draws all its randomness up front (Gumbel-max: argmax(logits + Gumbel noise) is an exact
  sample from softmax(logits)), so a step costs no `multinomial`;
* keeps per-step bookkeeping to one in-place update (the EOS mask is built after the loop);
* runs under `torch.inference_mode` and returns ordinary tensors (cloned), which later passes may
  save for backward.

The prompt itself goes through `GPT.blocks` in one pass (prefill), so the cache holds exactly
what the model computes; `tests/core/lm/test_sampling.py` checks every step's logits against a full
forward pass.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.lm.masks import as_token_mask, position_ids, query_key_mask
from core.lm.model import GPT, PAD_ID

Tensor = torch.Tensor
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleOutput:
    """Result of `generate` (T = max_new_tokens, B = batch).

    tokens:   [B,T] long. After a row emits EOS, the rest of it is PAD_ID. T = max_new_tokens,
              or fewer after `trimmed()`.
    logprobs: [B,T] float. log-prob of each sampled token under the policy's sampling
              distribution softmax(logits / temperature): what `sequence_logprobs` recomputes.
              With top_k it is under the truncated, renormalised distribution actually drawn from
              (the trainer then recomputes old log-probs with a full pass). The EOS ban of
              min_new_tokens is a constraint on the sampler, not part of the policy (as in TRL,
              whose training pass scores the same tokens without it): without top_k the
              recorded log-prob is the policy's own. 0 where mask is 0.
    mask:     [B,T] float. 1 for real completion tokens up to and including EOS, else 0.
    logits:   [B,T,V] raw model logits (before temperature / top-k) at each step, only when
              generate(..., return_logits=True); else None. For tests and inspection.
    hidden:   [B,T,C] the final hidden state each token was chosen from (what a value head reads
              as V(s_t), as `sequence_logprobs(..., return_hidden=True)` gives it), only when
              generate(..., return_hidden=True); else None.
    """

    tokens: Tensor
    logprobs: Tensor
    mask: Tensor
    logits: Tensor | None = None
    hidden: Tensor | None = None

    @property
    def lengths(self) -> Tensor:
        """[B] long: number of real completion tokens per row (EOS included)."""
        return self.mask.sum(dim=1).long()

    def trimmed(self) -> SampleOutput:
        """The same sample without the trailing columns that no row reached: when every
        completion ended early, the passes after sampling need not run over pure padding."""
        width = max(1, int(self.lengths.max()))
        if width == self.tokens.shape[1]:
            return self
        def cut(t):
            return None if t is None else t[:, :width]
        return SampleOutput(self.tokens[:, :width], self.logprobs[:, :width],
                            self.mask[:, :width], cut(self.logits), cut(self.hidden))


def generate(
    model: GPT,
    prompt_ids: Tensor,
    prompt_mask: Tensor | None,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
    return_logits: bool = False,
    pad_id: int = PAD_ID,
    min_new_tokens: int = 0,
    return_hidden: bool = False,
) -> SampleOutput:
    """Sample max_new_tokens tokens for every row of a LEFT-PADDED prompt batch.

    prompt_ids [B,P] long, prompt_mask [B,P] (1 = real; None = no padding). Every row needs at
    least one real prompt token (e.g. a BOS) and P + max_new_tokens <= block_size.
    temperature > 0 divides the logits; top_k keeps the k most likely tokens (1 = greedy).
    After a row samples eos_id it is finished: its later tokens are pad_id with mask 0. The
    loop stops as soon as every row has finished. min_new_tokens: EOS cannot be sampled before
    that many tokens (TRL's min_new_tokens), so min = max gives every row exactly max tokens.
    generator makes sampling reproducible.

    Runs in eval mode (restored afterwards), so dropout never perturbs sampling, and makes no
    graph.
    """
    cfg = model.config
    if prompt_ids.dim() != 2:
        raise ValueError(f"prompt_ids must be [B,P], got shape {tuple(prompt_ids.shape)}")
    B, P = prompt_ids.shape
    if B == 0 or P == 0:
        raise ValueError(f"prompt_ids must be non-empty, got shape {tuple(prompt_ids.shape)}")
    for name, value, low in (("max_new_tokens", max_new_tokens, 1),
                             ("min_new_tokens", min_new_tokens, 0)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an int, got {value!r}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if min_new_tokens > max_new_tokens:
        raise ValueError(f"min_new_tokens ({min_new_tokens}) must be <= max_new_tokens "
                         f"({max_new_tokens})")
    if P + max_new_tokens > cfg.block_size:
        raise ValueError(
            f"prompt length {P} + max_new_tokens {max_new_tokens} = {P + max_new_tokens} "
            f"exceeds block_size {cfg.block_size}; shorten the prompt or generate fewer tokens"
        )
    if not temperature > 0:
        raise ValueError(
            f"temperature must be > 0, got {temperature}; use top_k=1 for greedy decoding"
        )
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 1):
        raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
    device = model.device
    prompt_ids = prompt_ids.to(device)
    if prompt_mask is None:
        prompt_mask = torch.ones_like(prompt_ids, dtype=torch.bool)
    prompt_mask = as_token_mask(prompt_mask, prompt_ids, "prompt_mask")
    if not bool(prompt_mask[:, -1].all()) or not bool(
        (prompt_mask[:, 1:] >= prompt_mask[:, :-1]).all()
    ):
        raise ValueError(
            "prompts must be LEFT-padded (mask 0...0 1...1) with at least one real token per "
            "row; put padding before the prompt, not after it"
        )
    if top_k is not None and top_k >= cfg.vocab_size:
        top_k = None   # keeping every token is no truncation
    ban = min_new_tokens if eos_id is not None else 0

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = _sample(model, prompt_ids, prompt_mask, max_new_tokens, float(temperature),
                          top_k, eos_id, generator, return_logits, pad_id, ban, return_hidden)
    finally:
        model.train(was_training)
    # Inference tensors cannot be saved for backward; the update embeds these tokens.
    return SampleOutput(*(t.clone() if t is not None else None for t in out))


def _sample(model: GPT, prompt_ids: Tensor, prompt_mask: Tensor, T: int, temperature: float,
            top_k: int | None, eos_id: int | None, generator: torch.Generator | None,
            return_logits: bool, pad_id: int, ban: int, return_hidden: bool) -> tuple:
    cfg = model.config
    device = prompt_ids.device
    B, P = prompt_ids.shape
    S, H, hd = P + T, cfg.n_head, cfg.head_dim
    dtype = model.wte.weight.dtype
    caches = [(torch.empty(B, H, S, hd, device=device, dtype=dtype),
               torch.empty(B, H, S, hd, device=device, dtype=dtype)) for _ in model.blocks]

    # Prefill: the whole prompt through the model's own blocks, writing the caches.
    x = model.wte(prompt_ids) + model.wpe(position_ids(prompt_mask))
    mask = query_key_mask(prompt_mask, P)
    for block, cache in zip(model.blocks, caches, strict=True):
        x = block(x, mask, cache, 0)
    hidden = model.ln_f(x[:, -1])  # [B,C]

    # Key padding as an additive bias over every cache slot (generated slots are all real),
    # laid out [B*H, 1, S] to match the batched products of `_decode_kernel`.
    bias = torch.zeros(B, H, 1, S, device=device, dtype=dtype)
    bias[:, :, 0, :P].masked_fill_(~prompt_mask[:, None, :], float("-inf"))
    bias = bias.view(B * H, 1, S)
    pos0 = prompt_mask.sum(dim=1)  # [B] position of the first new token
    # Gumbel-max: argmax(logits/temperature + G) with G = -log(-log U) is an exact draw from
    # softmax(logits/temperature). One draw for every step up front.
    u = torch.rand(T, B, cfg.vocab_size, device=device, generator=generator)
    gumbel = u.clamp_(min=1e-20).log_().neg_().clamp_(min=1e-20).log_().neg_()

    all_logits = torch.zeros(B, T, cfg.vocab_size, device=device) if return_logits else None
    all_hidden = torch.zeros(B, T, cfg.n_embd, device=device) if return_hidden else None
    tokens, logprobs, steps = _run_loop(
        hidden, gumbel, _weights(model), [k for k, _ in caches], [v for _, v in caches], bias,
        pos0, P, H, hd, model.ln_f.eps, temperature, top_k or 0,
        -1 if eos_id is None else eos_id, ban, all_logits, all_hidden)
    tokens, logprobs = tokens[:, :steps], logprobs[:, :steps]
    if eos_id is not None:
        # A token is real up to and including the row's first EOS.
        is_eos = (tokens == eos_id).long()
        real = (is_eos.cumsum(dim=1) - is_eos) == 0
    else:
        real = torch.ones_like(tokens, dtype=torch.bool)
    out_tokens = torch.full((B, T), pad_id, dtype=torch.long, device=device)
    out_logp = torch.zeros(B, T, dtype=torch.float32, device=device)
    out_mask = torch.zeros(B, T, dtype=torch.float32, device=device)
    out_tokens[:, :steps] = tokens.masked_fill(~real, pad_id)
    out_logp[:, :steps] = logprobs.masked_fill(~real, 0.0)
    out_mask[:, :steps] = real.float()
    return out_tokens, out_logp, out_mask, all_logits, all_hidden


def _weights(model: GPT) -> list[Tensor]:
    """[wte, wpe, 12 tensors per block, ln_f weight, ln_f bias], as `_decode_kernel` reads them."""
    weights = [model.wte.weight, model.wpe.weight]
    for block in model.blocks:
        attn, mlp = block.attn, block.mlp
        weights += [block.ln_1.weight, block.ln_1.bias, attn.c_attn.weight, attn.c_attn.bias,
                    attn.c_proj.weight, attn.c_proj.bias, block.ln_2.weight, block.ln_2.bias,
                    mlp.c_fc.weight, mlp.c_fc.bias, mlp.c_proj.weight, mlp.c_proj.bias]
    return weights + [model.ln_f.weight, model.ln_f.bias]


def _run_loop(*args) -> tuple[Tensor, Tensor, int]:
    """`_decode_loop`, as TorchScript where torch still has it. The interpreter runs the whole
    loop (~70 operations a token) without the GIL, so a window redrawing on the GUI thread no
    longer stalls sampling at every operation (it did: sampling ran 43% slower in the window,
    the passes 3-6%), and the dispatch costs less: 143 -> 108 ms for 64 x 48 tokens."""
    return _kernel()(*args)


def _decode_loop(hidden: Tensor, gumbel: Tensor, w: list[Tensor], k_caches: list[Tensor],
                 v_caches: list[Tensor], bias: Tensor, pos0: Tensor, P: int, H: int, hd: int,
                 eps: float, temperature: float, top_k: int, eos_id: int, ban: int,
                 all_logits: Tensor | None,
                 all_hidden: Tensor | None) -> tuple[Tensor, Tensor, int]:
    """Sample token t from the final `hidden` state [B,C], then run the model one step on it;
    T = gumbel.shape[0] times or until every row has sampled EOS. top_k 0 = all tokens, eos_id
    -1 = none. Returns raw tokens and their log-probs [B,T] (valid up to `steps`) and `steps`."""
    T, B = gumbel.shape[0], hidden.shape[0]
    tokens = torch.empty(B, T, dtype=torch.long, device=hidden.device)
    logprobs = torch.empty(B, T, dtype=torch.float32, device=hidden.device)
    finished = torch.zeros(B, dtype=torch.bool, device=hidden.device)
    steps = T
    for t in range(T):
        if all_hidden is not None:
            all_hidden[:, t] = hidden
        logits = F.linear(hidden, w[0])   # the tied head
        if all_logits is not None:
            all_logits[:, t] = logits
        scaled = logits.float()
        if temperature != 1.0:
            scaled = scaled / temperature
        banned = t < ban
        if banned and top_k > 0:   # the EOS ban comes before top-k, as in TRL (HF)
            scaled = scaled.clone()
            scaled[:, eos_id] = float("-inf")
        if top_k > 0:
            kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        logp = torch.log_softmax(scaled, dim=-1)
        draw = logp + gumbel[t]
        if banned and top_k <= 0:
            draw[:, eos_id] = float("-inf")   # the policy's log-prob, the constrained draw
        tok = draw.argmax(dim=-1)
        tokens[:, t] = tok
        logprobs[:, t] = logp.gather(1, tok.unsqueeze(1)).squeeze(1)
        if eos_id >= 0 and not banned:   # no row can end while EOS is banned: skip the sync
            finished = finished | (tok == eos_id)
            if bool(finished.all()):
                steps = t + 1
                break
        if t == T - 1:
            break
        hidden = _decode_kernel(tok, pos0 + t, w, k_caches, v_caches, bias, P + t, H, hd, eps)
    return tokens, logprobs, steps


def _decode_kernel(tok: Tensor, pos: Tensor, w: list[Tensor], k_caches: list[Tensor],
                   v_caches: list[Tensor], bias: Tensor, cur: int, H: int, hd: int,
                   eps: float) -> Tensor:
    """`Block.forward` on a length-1 sequence, for every block, then the final LayerNorm, in
    functional form on [B,C] activations -> hidden [B,C]; w = [wte, wpe, 12 tensors per block,
    ln_f weight, ln_f bias]."""
    B = tok.shape[0]
    C = w[0].shape[1]
    end = cur + 1
    scale = 1.0 / math.sqrt(hd)
    x = F.embedding(tok, w[0]) + F.embedding(pos, w[1])
    for i in range(len(k_caches)):
        o = 2 + 12 * i
        h = F.layer_norm(x, [C], w[o], w[o + 1], eps)
        qkv = F.linear(h, w[o + 2], w[o + 3]).view(B, 3, H, hd)
        k_caches[i][:, :, cur] = qkv[:, 1]
        v_caches[i][:, :, cur] = qkv[:, 2]
        q = qkv[:, 0].reshape(B * H, 1, hd)
        k = k_caches[i].view(B * H, -1, hd)[:, :end]
        v = v_caches[i].view(B * H, -1, hd)[:, :end]
        scores = torch.baddbmm(bias[:, :, :end], q, k.transpose(1, 2), beta=1.0, alpha=scale)
        y = torch.bmm(torch.softmax(scores, dim=-1), v).view(B, C)
        x = x + F.linear(y, w[o + 4], w[o + 5])
        h = F.layer_norm(x, [C], w[o + 6], w[o + 7], eps)
        h = F.gelu(F.linear(h, w[o + 8], w[o + 9]))
        x = x + F.linear(h, w[o + 10], w[o + 11])
    return F.layer_norm(x, [C], w[-2], w[-1], eps)


_compiled: list = []


def _kernel():
    """`_decode_loop` scripted once per process; the plain function if scripting fails (a torch
    without TorchScript): the same numbers, only the GIL is taken between operations again."""
    if not _compiled:
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # "torch.jit.script is deprecated"
                _compiled.append(torch.jit.script(_decode_loop))
        except Exception:  # noqa: BLE001 - any failure to script leaves the eager path
            log.warning("the decode loop could not be scripted; sampling runs eagerly",
                        exc_info=True)
            _compiled.append(_decode_loop)
    return _compiled[0]
