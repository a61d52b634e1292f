"""Named reward models in the data folder: `reward_models/NAME.safetensors` + `NAME.json`.

The safetensors file holds the weights (trunk and head) with the trunk's GPTConfig; the JSON
beside it says what the model is: its task, loss, how many rankings of which sources it saw, and
its held-out accuracies, so `rlhf-explorer rm list`, the window and a run's config can name it
without loading torch. Both files are written beside their final name and renamed into place, the
JSON last, so a model that is listed is whole. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.storage import check_name  # noqa: F401  (where callers find it)

FOLDER = "reward_models"




def models_dir(data_dir) -> Path:
    return Path(data_dir).expanduser() / FOLDER


def save_reward_model(data_dir, name: str, model, meta: dict) -> Path:
    """Write `model` (a core.reward_learning.reward_model.RewardModel) as NAME; replaces an
    older NAME."""
    from safetensors.torch import save_file

    folder = models_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    check_name(name)
    weights, info = folder / f"{name}.safetensors", folder / f"{name}.json"
    tensors = {k: v.detach().to("cpu").clone().contiguous()
               for k, v in model.state_dict().items()}
    config = json.dumps(model.trunk.config.to_dict())
    from core.storage import atomic_write, atomic_write_text

    # the weights first: a model is listed only when its JSON exists beside whole weights
    atomic_write(weights, lambda tmp: save_file(tensors, str(tmp), metadata={
        "format": "pt", "gpt_config": config}))
    atomic_write_text(info, json.dumps({"name": name, **meta}, indent=2) + "\n")
    return weights


def list_reward_models(data_dir, task: str | None = None) -> list[dict]:
    """Every whole model's JSON (newest first), optionally of one task."""
    folder = models_dir(data_dir)
    out = []
    for info in folder.glob("*.json") if folder.is_dir() else ():
        if not (folder / f"{info.stem}.safetensors").exists():
            continue
        try:
            meta = json.loads(info.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if task is None or meta.get("task") == task:
            out.append(meta)
    return sorted(out, key=lambda m: m.get("created_at", ""), reverse=True)


def reward_model_info(data_dir, name: str) -> dict:
    check_name(name)
    info = models_dir(data_dir) / f"{name}.json"
    known = [m["name"] for m in list_reward_models(data_dir)]
    if not info.exists() or name not in known:
        hint = f"; saved models: {', '.join(known)}" if known else (
            "; train one with `rlhf-explorer rm train --task TASK --name NAME`")
        raise ValueError(f"no reward model {name!r} in {models_dir(data_dir)}{hint}")
    return json.loads(info.read_text())


def load_reward_model(data_dir, name: str, device="cpu"):
    """(RewardModel on `device`, its JSON) for NAME; ValueError if missing or unreadable."""
    import torch
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    from core.lm.model import GPT, GPTConfig
    from core.reward_learning.reward_model import RewardModel

    meta = reward_model_info(data_dir, name)
    path = models_dir(data_dir) / f"{name}.safetensors"
    try:
        with safe_open(str(path), framework="pt") as f:
            config = GPTConfig.from_dict(json.loads((f.metadata() or {})["gpt_config"]))
        state = load_file(str(path), device="cpu")
        model = RewardModel.from_state(GPT(config), state)
    except (SafetensorError, OSError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a readable reward model: {exc}") from exc
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(torch.device(device)).eval(), meta
