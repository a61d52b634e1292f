"""Tests for core/lm/checkpoints.py: safetensors round trip, error messages, device names."""

from __future__ import annotations

import pytest
import torch

from core.lm.checkpoints import load_checkpoint, resolve_device, save_checkpoint
from core.lm.model import GPT, PAD_ID, GPTConfig


def make_model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=23, block_size=32, n_layer=2, n_head=2, n_embd=32)).eval()


def test_checkpoint_round_trip(tmp_path):
    model = make_model(seed=3)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, meta={"step": 12, "tokenizer": "chars-v1"})
    loaded, meta = load_checkpoint(path)
    assert meta == {"step": 12, "tokenizer": "chars-v1"}
    assert loaded.config == model.config
    loaded.eval()
    # two left-padded rows: lengths 4 and 2
    ids = torch.tensor([[5, 9, 2, 17], [PAD_ID, PAD_ID, 11, 3]])
    mask = (ids != PAD_ID).long()
    torch.testing.assert_close(loaded(ids, mask), model(ids, mask), atol=0, rtol=0)
    # the tie survives the load: one matrix used as both embedding and head
    with torch.no_grad():
        loaded.wte.weight[1] += 1.0
    assert not torch.equal(loaded(ids, mask), model(ids, mask))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        assert sum("wte" in k for k in f.keys()) == 1


def test_checkpoint_errors(tmp_path):
    model = make_model()
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "x.safetensors", model, meta={"bad": object()})
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="safetensors"):
        load_checkpoint(bogus)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
