"""TRL's half of `bench_vs_trl.py`; runs inside the TRL virtual environment that script builds.

    <trl-venv>/bin/python benchmarks/trl_side.py --model DIR --threads 2 --steps 12 --block 3

A TRL `GRPOTrainer` on a GPT-2 of our model's shape, saved in DIR with a character tokenizer
wrapped in `PreTrainedTokenizerFast` (the reference model is reloaded from that path, as TRL does).
It trains on the sentiment task's prompts with the task's true reward, like our side. Every
`--block` steps it prints one JSON line with the block's step times and waits for a line on stdin
before going on, so the two sides never run at once. Nothing here is imported by the project.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
sys.path.insert(0, str(ROOT))  # core.tasks and core.lm.tokenizer are numpy-only: shared, not copied


def save_model(out: Path, checkpoint: Path) -> None:
    """Our base model as a Hugging Face GPT-2 (same shape, same weights, same vocabulary), saved
    where TRL can reload it. The only difference in the network is GPT-2's tanh GELU."""
    import tokenizers
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from core.lm.checkpoints import load_checkpoint
    from core.lm.tokenizer import TOKENIZER

    ours, _ = load_checkpoint(checkpoint)
    shape = ours.config

    # Our ids exactly: the three specials, then the characters in the tokenizer's order.
    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", *TOKENIZER.chars])}
    tk = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<pad>"))
    tk.pre_tokenizer = tokenizers.pre_tokenizers.Split(tokenizers.Regex("."), "isolated")
    tk.decoder = tokenizers.decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", bos_token="<bos>",
                                   eos_token="<eos>", unk_token="<pad>")
    config = GPT2Config(vocab_size=len(vocab), n_positions=shape.block_size, n_embd=shape.n_embd,
                        n_layer=shape.n_layer, n_head=shape.n_head, bos_token_id=TOKENIZER.bos_id,
                        eos_token_id=TOKENIZER.eos_id, pad_token_id=TOKENIZER.pad_id,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = GPT2LMHeadModel(config)
    # GPT-2's Conv1D stores the transpose of nn.Linear's weight.
    state = {"transformer.wte.weight": ours.wte.weight, "transformer.wpe.weight": ours.wpe.weight,
             "transformer.ln_f.weight": ours.ln_f.weight, "transformer.ln_f.bias": ours.ln_f.bias}
    for i, block in enumerate(ours.blocks):
        for name, module in (("ln_1", block.ln_1), ("ln_2", block.ln_2)):
            state[f"transformer.h.{i}.{name}.weight"] = module.weight
            state[f"transformer.h.{i}.{name}.bias"] = module.bias
        for name, module in (("attn.c_attn", block.attn.c_attn), ("attn.c_proj", block.attn.c_proj),
                             ("mlp.c_fc", block.mlp.c_fc), ("mlp.c_proj", block.mlp.c_proj)):
            state[f"transformer.h.{i}.{name}.weight"] = module.weight.t()
            state[f"transformer.h.{i}.{name}.bias"] = module.bias
    with torch.no_grad():
        for name, value in state.items():
            hf.get_parameter(name).copy_(value)
    hf.save_pretrained(out)
    fast.save_pretrained(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--block", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--beta", type=float, default=0.04)
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "assets" / "sentiment.safetensors")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if not (args.model / "config.json").exists():
        save_model(args.model, args.checkpoint)

    import numpy as np
    import transformers
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    from core.tasks import get_task

    transformers.logging.set_verbosity_error()
    task = get_task("sentiment")
    prompts = task.sample_prompts(args.prompts * (args.steps + 2), np.random.default_rng(0))
    data = Dataset.from_list([{"prompt": "<bos>" + p} for p in prompts])

    def true_reward(prompts, completions, **_):
        return [float(r) for r in task.true_rewards([p.removeprefix("<bos>") for p in prompts],
                                                    completions)]

    class Blocks(TrainerCallback):
        """Times each optimiser step end to end and hands control back every `block` steps."""

        def __init__(self):
            self.times, self.t0 = [], None

        def on_step_begin(self, *_, **__):
            if self.t0 is None:
                self.t0 = time.perf_counter()

        def on_step_end(self, _args, state, *__, **___):
            now = time.perf_counter()
            self.times.append(now - self.t0)
            if len(self.times) == args.block:
                print(json.dumps({"step_s": self.times}), flush=True)
                self.times = []
                sys.stdin.readline()   # wait for the parent's turn to end
                now = time.perf_counter()
            self.t0 = now

    config = trl.GRPOConfig(
        output_dir=str(args.model / "out"), max_steps=args.steps, learning_rate=1e-4,
        per_device_train_batch_size=args.prompts * args.group, num_generations=args.group,
        steps_per_generation=1, max_completion_length=args.tokens,
        generation_kwargs={"min_new_tokens": args.tokens}, temperature=1.0, top_k=0,
        beta=args.beta, loss_type="grpo", gradient_checkpointing=False, use_cpu=True,
        bf16=False, fp16=False, report_to="none", save_strategy="no", logging_steps=10_000,
        disable_tqdm=True, dataloader_num_workers=0, seed=0, log_completions=False)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=true_reward, args=config,
                              train_dataset=data, processing_class=tokenizer,
                              callbacks=[Blocks()])
    print(json.dumps({"ready": True, "trl": trl.__version__,
                      "transformers": transformers.__version__, "torch": torch.__version__,
                      "params": sum(p.numel() for p in model.parameters())}), flush=True)
    sys.stdin.readline()
    trainer.train()
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    main()
