"""Checkpoint I/O and device resolution for the GPT in core/lm/model.py.

* `save_checkpoint` / `load_checkpoint`: safetensors with the GPTConfig as JSON metadata; nothing is
  ever unpickled.
* `resolve_device` turns "auto" / "cpu" / "cuda" into a `torch.device`.

core.lm.model does not import this module, so the two never form an import cycle.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from core.lm.model import GPT, GPTConfig

log = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"

# Bumped when the tensor names or metadata layout of checkpoints change.
CHECKPOINT_FORMAT = "rlhf-explorer-gpt/1"


def default_checkpoint(task: str) -> Path:
    """The base model shipped for `task` (`rlhf-explorer pretrain` makes it)."""
    return ASSETS_DIR / f"{task}.safetensors"


def save_checkpoint(path, model: GPT, meta: dict | None = None) -> None:
    """Write the weights as safetensors, with the GPTConfig and `meta` as JSON in its metadata.

    The head is tied to the token embedding by construction (one Parameter), so each matrix is
    stored once. meta must be JSON-serialisable (ValueError otherwise).
    """
    from safetensors.torch import save_file

    try:
        meta_json = json.dumps(meta if meta is not None else {})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint meta must be JSON-serialisable: {exc}") from exc
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": "pt",
        "rlhf_explorer": CHECKPOINT_FORMAT,
        "gpt_config": json.dumps(model.config.to_dict()),
        "meta": meta_json,
    }
    from core.storage import atomic_write

    # whole or absent after a crash, and 0644 like any data file (safetensors writes 0600)
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    log.info("saved checkpoint %s (%d tensors)", path, len(tensors))


def load_checkpoint(path, device: str | torch.device = "cpu") -> tuple[GPT, dict]:
    """Read a checkpoint written by `save_checkpoint` -> (GPT on `device`, meta dict).

    Only safetensors + JSON are parsed; nothing is unpickled. The model comes back in train mode,
    like any new nn.Module; call .eval() or frozen_copy() as needed.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    if "gpt_config" not in metadata:
        raise ValueError(
            f"{path} is not an rlhf-explorer model (no 'gpt_config' in its metadata); give a "
            "checkpoint from assets/ or a run's folder"
        )
    try:
        config = GPTConfig.from_dict(json.loads(metadata["gpt_config"]))
        meta = json.loads(metadata.get("meta", "{}"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} has corrupt JSON metadata: {exc}") from exc
    model = GPT(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match its GPTConfig: {exc}") from exc
    log.info("loaded checkpoint %s (%d parameters)", path, model.num_params())
    return model.to(device), meta


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> cuda if available else cpu; "cpu"; "cuda" / "cuda:N" (ValueError without CUDA)."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was requested but CUDA is not available in this torch build "
                f"(torch {torch.__version__}); use 'cpu' or 'auto'"
            )
        try:
            return torch.device(name)
        except RuntimeError as exc:
            raise ValueError(f"bad CUDA device {device!r}: {exc}") from exc
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
